from __future__ import annotations

from django.db import models


class ItemFields(models.Model):
    """The fields both measured models share."""

    name = models.CharField(max_length=100)
    price = models.DecimalField(max_digits=10, decimal_places=2)
    in_stock = models.BooleanField(default=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True
        app_label = "write_app"


class Item(ItemFields):
    """Registered with ``@model_subscription`` (``serializers.py``): its saves publish events."""


class PlainItem(ItemFields):
    """The same fields, not registered: the saves without the library's work."""
