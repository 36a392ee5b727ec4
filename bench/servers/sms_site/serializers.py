from __future__ import annotations

from benchapp.models import Item
from rest_framework import serializers

from strawberry_model_subs import model_subscription


@model_subscription(stream="items")
class ItemSerializer(serializers.ModelSerializer):
    class Meta:
        model = Item
        fields = "__all__"
