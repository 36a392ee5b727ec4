from __future__ import annotations

import datetime
from typing import Any

from rest_framework import serializers
from rest_framework.permissions import BasePermission, IsAuthenticated

from strawberry_model_subs import model_subscription

from .models import Article, Category, Everything, Note, Product, Review, Tag, Ticket, Topic


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
    # many=True makes a ManyRelatedField, which the stubs do not tell from the child's type.
    tag_slugs: serializers.Field = serializers.SlugRelatedField(
        source="tags", many=True, read_only=True, slug_field="label"
    )
    category_name = serializers.CharField(source="category.name", read_only=True, required=False)
    # A field named like Field.label, on purpose (the mapping must take any name): the stubs
    # see it as overriding that attribute, DRF's metaclass collects it as a declared field.
    label: serializers.StringRelatedField[Category] = serializers.StringRelatedField(  # type: ignore[assignment]
        source="category", read_only=True
    )
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


# -- protected streams (tests/test_permissions.py, tests/e2e/test_security.py) ---------------------


class IsOwner(BasePermission):
    """Staff read every note; another user only the notes they own."""

    message = "you only see your own notes"

    def has_object_permission(self, request: Any, view: Any, obj: Any) -> bool:
        return bool(request.user.is_staff or obj.owner == request.user.pk)


#: The fields of a note a user who is not staff may receive (never ``secret``).
PUBLIC_NOTE_FIELDS = frozenset({"id", "owner", "text", "shared"})


def note_fields_for(user: Any) -> frozenset[str] | None:
    return None if user.is_staff else PUBLIC_NOTE_FIELDS


@model_subscription(
    stream="notes",
    permission_classes=[IsAuthenticated, IsOwner],
    fields_for=note_fields_for,
)
class NoteSerializer(serializers.ModelSerializer):
    """Authenticated users only; each sees their own notes (staff all), ``secret`` staff only."""

    class Meta:
        model = Note
        fields = ("id", "owner", "text", "secret", "shared")


def shared_or_own(user: Any, data: dict[str, Any]) -> bool:
    return bool(data["shared"] or (user.is_authenticated and data["owner"] == user.pk))


@model_subscription(stream="note-feed", name="NoteFeed", event_filter=shared_or_own)
class NoteFeedSerializer(serializers.ModelSerializer):
    """Anyone may subscribe, anonymous users too; each receives shared notes and their own."""

    class Meta:
        model = Note
        fields = ("id", "owner", "text", "shared")


@model_subscription(stream="articles")
class ArticleSerializer(serializers.ModelSerializer):
    class Meta:
        model = Article
        fields = ("id", "title", "topics")


@model_subscription(stream="topics")
class TopicSerializer(serializers.ModelSerializer):
    # many=True makes a ManyRelatedField, which the stubs do not tell from the child's type.
    articles: serializers.Field = serializers.PrimaryKeyRelatedField(many=True, read_only=True)

    class Meta:
        model = Topic
        fields = ("id", "name", "articles")
