"""Settings shared by every Django contender (Django 3.2 to 5.2).

Environment: ``BENCH_DB`` (the SQLite file), ``BENCH_LAYER`` (``memory``, ``redis`` for
``RedisChannelLayer`` or ``pubsub`` for ``RedisPubSubChannelLayer``) and ``BENCH_REDIS_URL``.
With ``BENCH_PG`` (``host:port``, user ``postgres``, trust) the database is PostgreSQL's
``BENCH_PG_DB`` instead of the SQLite file: a server and a writer process of its own then share it
(``bench/restarts.py``).
"""

from __future__ import annotations

import os

SECRET_KEY = "bench-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "channels",
    "benchapp",
]
# No middleware: the trigger endpoint is the only HTTP view and every contender shares it.
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "benchapp.urls"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("BENCH_DB", "/tmp/bench.sqlite3"),
    }
}
if os.environ.get("BENCH_PG"):
    _pg_host, _, _pg_port = os.environ["BENCH_PG"].rpartition(":")
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.environ.get("BENCH_PG_DB", "sms_bench"),
            "USER": "postgres",
            "HOST": _pg_host,
            "PORT": _pg_port,
        }
    }

_layer = os.environ.get("BENCH_LAYER", "memory")
_redis_host = {
    "address": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9"),
    # redis-py 8 caps a pool at 100 connections and times reads out after 5 s (the library's
    # README, "Deploying").
    "max_connections": 1000,
    "socket_timeout": 30,
}
if _layer == "redis":
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [_redis_host], "prefix": "bench"},
        }
    }
elif _layer == "pubsub":
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [_redis_host], "prefix": "bench"},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
