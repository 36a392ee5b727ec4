"""Django settings for the test suite.

Environment switches:

* ``SMS_DATABASE=postgres`` runs against the local PostgreSQL instead of SQLite.
* ``SMS_CHANNEL_LAYER=redis`` / ``redis-pubsub`` uses a Redis channel layer instead of the
  in-memory one (needed whenever more than one process shares events).
* ``SMS_SQLITE_PATH`` lets a real server subprocess share a SQLite file with the test process.
* ``SMS_SETTINGS``: a JSON object of library settings (``STRAWBERRY_MODEL_SUBS``) for a server
  an e2e test starts, e.g. ``{"HISTORY_SIZE": 5}``.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = "test-secret-key-not-for-production"
DEBUG = False
# Explicit hosts, so that AllowedHostsOriginValidator (the /ws-origin-checked route) refuses others.
# SMS_HOST: a server of an e2e test on a host of its own (tests/e2e/netns.py) is reached there.
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]", "testserver", os.environ.get("SMS_HOST", "")]
USE_TZ = True
TIME_ZONE = "UTC"

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "channels",
    "rest_framework",
    "strawberry_model_subs",
    "tests.testapp",
]

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]

if os.environ.get("SMS_DATABASE") == "postgres":
    DATABASES: dict[str, dict[str, Any]] = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.environ.get("SMS_PG_NAME", "test"),
            "USER": "postgres",
            "HOST": "127.0.0.1",
            "PORT": "5432",
            # A test database of this run's own (see _layer_prefix): two runs on one server
            # would otherwise create and drop the same one under each other.
            "TEST": {
                "NAME": f"test_sms_{os.environ.setdefault('SMS_TEST_RUN', uuid.uuid4().hex[:12])}"
            },
        }
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("SMS_SQLITE_PATH", str(BASE_DIR / "test.sqlite3")),
            # None means an in-memory test database.
            "TEST": {"NAME": os.environ.get("SMS_SQLITE_TEST_PATH")},
        }
    }

_channel_layer = os.environ.get("SMS_CHANNEL_LAYER", "memory")
_redis_url = os.environ.get("SMS_REDIS_URL", "redis://127.0.0.1:6379/0")
# redis-py 8 caps a pool at 100 connections and times reads out after 5 s, the same 5 s that
# channels_redis blocks in BZPOPMIN: both need setting (see README, "Deploying").
_redis_host = {"address": _redis_url, "max_connections": 1000, "socket_timeout": 30}
# A layer prefix of this test run's own (inherited by the servers it starts): a shared Redis
# holds other runs' groups (a run killed midway leaves members for a day, channels_redis'
# group_expiry) and a developer's running servers, and neither may see or skew this run.
_layer_prefix = "test-" + os.environ.setdefault("SMS_TEST_RUN", uuid.uuid4().hex[:12])
if _channel_layer == "redis":
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [_redis_host], "prefix": _layer_prefix},
        }
    }
elif _channel_layer == "redis-pubsub":
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [_redis_host], "prefix": _layer_prefix},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# The connection authentication hook: a token in connection_init or the query string; and
# what a server process of an e2e test is started with (SMS_SETTINGS, a JSON object).
STRAWBERRY_MODEL_SUBS = {
    "AUTHENTICATE": "tests.testapp.auth.authenticate",
    **json.loads(os.environ.get("SMS_SETTINGS", "{}")),
}

ROOT_URLCONF = "tests.testapp.urls"
ASGI_APPLICATION = "tests.testapp.asgi.application"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.debug",
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
            ],
        },
    }
]

STATIC_URL = "/static/"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        "strawberry_model_subs": {"handlers": ["console"], "level": "INFO"},
    },
}
