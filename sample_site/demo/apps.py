from __future__ import annotations

from django.apps import AppConfig


class DemoConfig(AppConfig):
    name = "sample_site.demo"
    label = "demo"
    verbose_name = "Demo gadgets"
