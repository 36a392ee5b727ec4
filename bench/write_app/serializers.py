"""Imported by the library's autodiscovery (``<app>.serializers``) at ``django.setup()``."""

from __future__ import annotations

from rest_framework import serializers

from strawberry_model_subs import model_subscription

from .models import Item

#: The stream the benchmark's receiver joins (group ``<GROUP_PREFIX>.<STREAM>``).
STREAM = "bench-items"


@model_subscription(stream=STREAM)
class ItemSerializer(serializers.ModelSerializer):
    class Meta:
        model = Item
        fields = ("id", "name", "price", "in_stock", "updated")
