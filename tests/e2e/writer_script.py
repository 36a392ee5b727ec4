"""A plain script that saves products: ``python tests/e2e/writer_script.py OPS``.

What a project's one-off script does: set Django up by hand, save, exit. No management command
runs it, so no system check imports the URLconf (nor the serializers through the schema): the
serializers are registered by the library's autodiscovery at ``django.setup()``, and the events
are published at interpreter exit (``atexit``) if they are not out yet. ``OPS`` is a JSON list of
``save_products`` operations, run in this process by ``call_command`` (which runs no check
either); the last line written to stdout is ``{"pks": {ref: pk}}``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django

django.setup()

from django.core.management import call_command  # noqa: E402

if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} OPS_JSON")
    call_command("save_products", sys.argv[1])
