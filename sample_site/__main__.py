"""``python -m sample_site``: migrate, load the demo data, serve on http://127.0.0.1:8000."""

from __future__ import annotations

import argparse
import os


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sample_site", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--no-input", action="store_true", help="never prompt (for scripts)")
    parser.add_argument("--no-serve", action="store_true", help="set up the database and stop")
    args = parser.parse_args(argv)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sample_site.settings")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", interactive=False, verbosity=0)
    call_command("load_demo")
    if args.no_serve:
        return

    import uvicorn

    base = f"http://{args.host}:{args.port}"
    print(
        f"\n  example client  {base}/\n"
        f"  GraphiQL        {base}/graphql\n"
        f"  websocket       ws://{args.host}:{args.port}/ws\n",
        flush=True,
    )
    uvicorn.run("sample_site.asgi:application", host=args.host, port=args.port, log_level="info")


if __name__ == "__main__":
    main()
