# shop/serializers.py: types the mapping cannot guess
import datetime
from decimal import Decimal

from rest_framework import serializers
from strawberry_model_subs import FIELD_TYPES, Mapped, model_subscription

from .models import Product


class Cents(serializers.Field):
    """A custom field: the price in cents."""

    def to_representation(self, value):
        return int(Decimal(value) * 100)  # the saved instance may hold a str: "2.50"


FIELD_TYPES[Cents] = Mapped(int)  # project-wide: every Cents field is an Int


@model_subscription(stream="catalogue", name="CatalogueItem", field_types={"label": str})
class CatalogueItemSerializer(serializers.ModelSerializer):
    cents = Cents(source="price", read_only=True)
    label = serializers.ReadOnlyField(source="name")  # JSON by default, String here
    restock = serializers.SerializerMethodField()  # typed from the return annotation

    class Meta:
        model = Product
        fields = ["id", "name", "cents", "label", "restock"]

    def get_restock(self, product) -> datetime.date | None:
        return None
