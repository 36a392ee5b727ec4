"""Settings of the write-path benchmark: PostgreSQL and one channel layer, both chosen by the
environment ``bench/write_path.py`` sets for each of its child processes.

``BENCH_WRITE_LAYER`` (a name of ``contenders.WRITE_LAYERS``), ``BENCH_WRITE_DB`` (the database,
dropped and created by the child), ``BENCH_WRITE_PG`` (``host:port``, user ``postgres``),
``BENCH_WRITE_REDIS`` (the Redis URL, with its database) and ``BENCH_WRITE_PREFIX`` (the
library's GROUP_PREFIX and the layer's key prefix, so nothing else sees the events).
"""

from __future__ import annotations

import os

from contenders import WRITE_LAYERS_BY_NAME

SECRET_KEY = "bench-not-secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "channels",
    "rest_framework",
    "strawberry_model_subs",
    "write_app",
]
MIDDLEWARE: list[str] = []

_pg_host, _, _pg_port = os.environ.get("BENCH_WRITE_PG", "127.0.0.1:5432").rpartition(":")
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ.get("BENCH_WRITE_DB", "sms_bench_write"),
        "USER": "postgres",
        "HOST": _pg_host,
        "PORT": _pg_port,
    }
}

_prefix = os.environ.get("BENCH_WRITE_PREFIX", "smsbenchwrite")
_layer = WRITE_LAYERS_BY_NAME[os.environ.get("BENCH_WRITE_LAYER", "memory")]
_config: dict[str, object] = {}
if _layer.redis:
    _config = {
        "hosts": [
            {
                "address": os.environ.get("BENCH_WRITE_REDIS", "redis://127.0.0.1:6379/7"),
                "socket_timeout": 30,
            }
        ],
        "prefix": _prefix,
    }
    if _layer.name == "redis":
        # Room for every message of a round even if the receiver falls behind (the default, 100
        # a channel, would drop them silently and the count would say so).
        _config["capacity"] = 100_000
CHANNEL_LAYERS = {"default": {"BACKEND": _layer.backend, "CONFIG": _config}}

STRAWBERRY_MODEL_SUBS = {"GROUP_PREFIX": _prefix}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
