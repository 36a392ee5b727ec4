from __future__ import annotations

import datetime

from rest_framework import serializers

from strawberry_model_subs import model_subscription

from .models import Category, Everything, Product, Review, Tag, Ticket


@model_subscription(stream="categories")
class CategorySerializer(serializers.ModelSerializer):
    class Meta:
        model = Category
        fields = "__all__"


@model_subscription(stream="products", description="Product Subscription")
class ProductSerializer(serializers.ModelSerializer):
    class Meta:
        model = Product
        fields = "__all__"


@model_subscription(stream="reviews")
class ReviewSerializer(serializers.ModelSerializer):
    class Meta:
        model = Review
        exclude = ("text",)


@model_subscription(stream="tags")
class TagSerializer(serializers.ModelSerializer):
    class Meta:
        model = Tag
        fields = "__all__"


@model_subscription(stream="tickets")
class TicketSerializer(serializers.ModelSerializer):
    class Meta:
        model = Ticket
        fields = "__all__"


class NestedCategorySerializer(serializers.ModelSerializer):
    class Meta:
        model = Category
        fields = ("id", "name")


@model_subscription(stream="everything", name="Everything")
class EverythingSerializer(serializers.ModelSerializer):
    """Every Django field type, plus the serializer-only fields the mapping knows."""

    nested_category = NestedCategorySerializer(source="category", read_only=True)
    tag_list = TagSerializer(source="tags", many=True, read_only=True)
    tag_slugs = serializers.SlugRelatedField(
        source="tags", many=True, read_only=True, slug_field="label"
    )
    category_name = serializers.CharField(source="category.name", read_only=True, required=False)
    label = serializers.StringRelatedField(source="category", read_only=True)
    numbers = serializers.ListField(child=serializers.IntegerField(), read_only=True, default=list)
    moments = serializers.ListField(child=serializers.DateTimeField(), read_only=True, default=list)
    extra = serializers.DictField(read_only=True, default=dict)
    flavours = serializers.MultipleChoiceField(
        choices=["sweet", "sour"], read_only=True, default=set
    )
    secret = serializers.CharField(write_only=True, required=False)
    summary = serializers.SerializerMethodField()
    next_check = serializers.SerializerMethodField()
    scores = serializers.SerializerMethodField()
    anything = serializers.SerializerMethodField()

    class Meta:
        model = Everything
        fields = "__all__"

    def get_summary(self, obj: Everything) -> str:
        return f"{obj.char_field}/{obj.integer_field}"

    def get_next_check(self, obj: Everything) -> datetime.datetime | None:
        return obj.date_time_field + datetime.timedelta(days=1)

    def get_scores(self, obj: Everything) -> list[float]:
        return [obj.float_field, obj.float_field * 2]

    # Unannotated on purpose: typed JSON.
    def get_anything(self, obj: Everything):
        return {"pk": obj.pk}
