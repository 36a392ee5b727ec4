from __future__ import annotations

from benchapp.settings_base import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "rest_framework"]  # noqa: F405
ASGI_APPLICATION = "dcrf_site.asgi.application"
