from __future__ import annotations

from django.db import models


class Item(models.Model):
    """Registered with ``@model_subscription`` (``serializers.py``): its saves publish events."""

    name = models.CharField(max_length=100)
    price = models.DecimalField(max_digits=10, decimal_places=2)
    in_stock = models.BooleanField(default=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        app_label = "write_app"


class PlainItem(models.Model):
    """The same fields, not registered: the saves without the library's work."""

    name = models.CharField(max_length=100)
    price = models.DecimalField(max_digits=10, decimal_places=2)
    in_stock = models.BooleanField(default=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        app_label = "write_app"
