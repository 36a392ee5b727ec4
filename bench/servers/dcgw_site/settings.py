from __future__ import annotations

from benchapp.settings_base import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "graphene_django", "dcgw_site"]  # noqa: F405
ASGI_APPLICATION = "dcgw_site.asgi.application"
GRAPHENE = {"SCHEMA": "dcgw_site.schema.schema"}
