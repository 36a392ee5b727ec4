"""Run the suite again on the real services: PostgreSQL with each channels_redis layer.

``make test`` calls this after the default run (SQLite, in-memory layer). When PostgreSQL
(127.0.0.1:5432) or Redis (127.0.0.1:6379) does not answer, the configuration is reported as
skipped, with the reason; when the ``CI`` environment variable is set, that is a failure instead.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

SERVICES = {"PostgreSQL": ("127.0.0.1", 5432), "Redis": ("127.0.0.1", 6379)}
LAYERS = ("redis", "redis-pubsub")


def down() -> list[str]:
    missing = []
    for name, address in SERVICES.items():
        try:
            socket.create_connection(address, timeout=2).close()
        except OSError as exc:
            missing.append(f"{name} on {address[0]}:{address[1]} ({exc})")
    return missing


def main() -> int:
    missing = down()
    if missing:
        reason = "not answering: " + "; ".join(missing)
        if os.environ.get("CI"):
            print(f"FAILED: the PostgreSQL + Redis configuration is required on CI, {reason}")
            return 1
        print(f"SKIPPED: the PostgreSQL + Redis configuration, {reason}")
        return 0
    for layer in LAYERS:
        print(f"== PostgreSQL + {layer} layer", flush=True)
        env = {**os.environ, "SMS_DATABASE": "postgres", "SMS_CHANNEL_LAYER": layer}
        # The e2e servers always run on SQLite and the in-memory layer, except the scale-out
        # tests, which are the point of this configuration.
        args = [sys.executable, "-m", "pytest", "-m", "not e2e or services", *sys.argv[1:]]
        code = subprocess.call(args, env=env)
        if code != 0:
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main())
