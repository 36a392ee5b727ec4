from __future__ import annotations

from django.apps import AppConfig


class SubsTestAppConfig(AppConfig):
    name = "tests.testapp"
    label = "testapp"
