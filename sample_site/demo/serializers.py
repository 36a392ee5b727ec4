"""The streams of the demo: the seed's users and groups, and gadgets with every kind of field."""

from __future__ import annotations

from django.contrib.auth.models import Group, User
from rest_framework import serializers

from strawberry_model_subs import model_subscription

from .models import Gadget, Maker


@model_subscription(stream="users", description="User Subscription")
class UserSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ("id", "username", "first_name", "last_name", "email", "is_superuser")


@model_subscription(stream="groups", description="Group Subscription")
class GroupSerializer(serializers.ModelSerializer):
    class Meta:
        model = Group
        fields = ("id", "name")


class MakerSerializer(serializers.ModelSerializer):
    class Meta:
        model = Maker
        fields = ("id", "name", "country")


@model_subscription(stream="gadgets", description="Gadget Subscription")
class GadgetSerializer(serializers.ModelSerializer):
    maker_detail = MakerSerializer(source="maker", read_only=True)
    # A field named like Field.label: the stubs see it as overriding that attribute, DRF's
    # metaclass collects it as a declared field (the demo's ``label``).
    label = serializers.SerializerMethodField()  # type: ignore[assignment]

    class Meta:
        model = Gadget
        fields = (
            "id",
            "name",
            "price",
            "released",
            "specs",
            "status",
            "maker",
            "maker_detail",
            "label",
        )

    def get_label(self, obj: Gadget) -> str:
        return f"{obj.name} by {obj.maker.name}"
