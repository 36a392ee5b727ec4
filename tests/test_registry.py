"""``@model_subscription`` registration and ``subscription_type()``: what is accepted, what is
refused at decoration time (and how the error names the culprit), and what the schema holds."""

from __future__ import annotations

import threading
from collections.abc import AsyncGenerator, Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
import strawberry
from django.http import HttpRequest, HttpResponse
from django.test import override_settings
from django.urls import path
from graphql import GraphQLEnumType, GraphQLObjectType, build_schema
from rest_framework import serializers
from strawberry.tools import merge_types

from strawberry_model_subs import RegistrationError, model_subscription, subscription_type
from strawberry_model_subs.registry import (
    registration_for_serializer,
    registration_for_stream,
    registrations,
    registrations_for_model,
    unregister,
)
from tests.testapp.models import Category, Product, Review
from tests.testapp.schema import schema as testapp_schema
from tests.testapp.serializers import ProductSerializer, ReviewSerializer


@strawberry.type
class Query:
    ok: bool = True


def category_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return HttpResponse()


# A URLconf for the hyperlinked-field test (ROOT_URLCONF points here for that test only).
urlpatterns = [path("categories/<int:pk>/", category_detail, name="category-detail")]


@pytest.fixture
def streams() -> Iterator[list[str]]:
    """Streams the test registered; all unregistered afterwards."""
    names: list[str] = []
    try:
        yield names
    finally:
        for stream in names:
            unregister(stream)


Decorate = Callable[..., Any]


@pytest.fixture
def decorate(streams: list[str]) -> Decorate:
    """``@model_subscription(stream=..., **kwargs)`` with the stream cleaned up afterwards."""

    def do(target: Any, *, stream: str, **kwargs: Any) -> Any:
        decorated = model_subscription(stream=stream, **kwargs)(target)
        # Recorded only once registered: a refused stream may be another test module's.
        streams.append(stream)
        return decorated

    return do


def make_serializer(
    class_name: str, model: type = Product, fields: Any = ("id", "name")
) -> type[serializers.ModelSerializer]:
    meta = type("Meta", (), {"model": model, "fields": fields})
    namespace = {"Meta": meta, "__module__": __name__}
    return type(class_name, (serializers.ModelSerializer,), namespace)


def object_fields(schema: strawberry.Schema, type_name: str) -> list[str]:
    graphql_type = build_schema(schema.as_str()).get_type(type_name)
    assert isinstance(graphql_type, GraphQLObjectType), f"{type_name} is not an object type"
    return list(graphql_type.fields)


def enum_members(schema: strawberry.Schema, type_name: str) -> list[str]:
    graphql_type = build_schema(schema.as_str()).get_type(type_name)
    assert isinstance(graphql_type, GraphQLEnumType), f"{type_name} is not an enum"
    return list(graphql_type.values)


# --- the decorator returns the serializer unchanged -----------------------------------------------


def test_decorator_returns_the_class_itself(decorate: Decorate) -> None:
    cls = make_serializer("PlainProductSerializer")
    namespace_before = dict(vars(cls))
    assert decorate(cls, stream="test-registry.plain") is cls
    assert dict(vars(cls)) == namespace_before


def test_direct_call_form_returns_the_class_itself(streams: list[str]) -> None:
    cls = make_serializer("DirectProductSerializer")
    decorated = model_subscription(cls, stream="test-registry.direct")
    streams.append("test-registry.direct")
    assert decorated is cls
    assert registration_for_stream("test-registry.direct") is not None


def test_decorated_serializer_still_serializes_and_validates(decorate: Decorate) -> None:
    cls = decorate(
        make_serializer("DrfProductSerializer", fields=("id", "name", "price")),
        stream="test-registry.drf",
    )
    assert cls(Product(pk=3, name="Tea", price=Decimal("1.5"))).data == {
        "id": 3,
        "name": "Tea",
        "price": "1.50",
    }
    serializer = cls(data={"name": "Coffee", "price": "2.25"})
    assert serializer.is_valid(), serializer.errors
    assert serializer.validated_data == {"name": "Coffee", "price": Decimal("2.25")}


# --- serialize(): one bound serializer per thread, unless its fields may depend on the instance ---


def test_serialize_matches_the_serializer_data_for_each_instance(decorate: Decorate) -> None:
    cls = decorate(
        make_serializer("ReusedProductSerializer", fields=("id", "name", "price")),
        stream="test-registry.reused",
    )
    registration = registration_for_serializer(cls)
    assert registration is not None
    for pk, name in ((1, "Tea"), (2, "Coffee"), (3, "Mate")):
        product = Product(pk=pk, name=name, price=Decimal("1.5"))
        assert registration.serialize(product) == cls(product).data


def test_serialize_points_the_serializer_at_the_instance(decorate: Decorate) -> None:
    class InstanceAwareSerializer(serializers.ModelSerializer):
        same = serializers.SerializerMethodField()

        class Meta:
            model = Product
            fields = ("id", "same")

        def get_same(self, obj: Product) -> bool:
            return self.instance is obj

    decorate(InstanceAwareSerializer, stream="test-registry.instance-aware")
    registration = registration_for_serializer(InstanceAwareSerializer)
    assert registration is not None
    assert registration.serialize(Product(pk=1, name="a"))["same"] is True
    assert registration.serialize(Product(pk=2, name="b"))["same"] is True


def test_serializer_whose_fields_depend_on_the_instance_is_built_per_event(
    decorate: Decorate,
) -> None:
    class ShapeShiftingSerializer(serializers.ModelSerializer):
        class Meta:
            model = Product
            fields = ("id", "name", "price")

        def get_fields(self) -> dict[str, serializers.Field]:
            fields = super().get_fields()
            if self.instance is not None and self.instance.pk % 2:
                del fields["price"]
            return fields

    decorate(ShapeShiftingSerializer, stream="test-registry.shape-shifting")
    registration = registration_for_serializer(ShapeShiftingSerializer)
    assert registration is not None
    assert set(registration.serialize(Product(pk=1, name="odd", price=Decimal(1)))) == {
        "id",
        "name",
    }
    assert set(registration.serialize(Product(pk=2, name="even", price=Decimal(1)))) == {
        "id",
        "name",
        "price",
    }


def test_each_thread_serializes_with_its_own_serializer(decorate: Decorate) -> None:
    cls = decorate(make_serializer("ThreadedProductSerializer"), stream="test-registry.threaded")
    registration = registration_for_serializer(cls)
    assert registration is not None
    barrier = threading.Barrier(4)
    results: dict[int, list[Any]] = {}

    def work(offset: int) -> None:
        barrier.wait(timeout=10)
        results[offset] = [
            registration.serialize(Product(pk=offset * 1000 + i, name=f"p{offset}-{i}"))["id"]
            for i in range(300)
        ]

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert results == {n: [n * 1000 + i for i in range(300)] for n in range(4)}


def test_registration_records_stream_model_name_and_field_names(decorate: Decorate) -> None:
    cls = decorate(
        make_serializer("RecordedProductSerializer", fields=("id", "name", "in_stock")),
        stream="test-registry.recorded",
        description="Recorded products",
    )
    registration = registration_for_serializer(cls)
    assert registration is not None
    assert registration is registration_for_stream("test-registry.recorded")
    assert registration in registrations_for_model(Product)
    assert registration.name == "RecordedProduct"
    assert registration.description == "Recorded products"
    assert registration.model is Product
    assert registration.model_label == "testapp.product"
    assert registration.field_names == ("id", "name", "in_stock")
    assert registration.control_field == "recordedProductSubscription"
    assert registration.changed_field == "recordedProductChanged"


def test_unregister_forgets_the_stream_everywhere(streams: list[str]) -> None:
    cls = make_serializer("ForgottenProductSerializer")
    model_subscription(stream="test-registry.forgotten")(cls)
    registration = registration_for_stream("test-registry.forgotten")
    unregister("test-registry.forgotten")
    assert registration_for_stream("test-registry.forgotten") is None
    assert registration_for_serializer(cls) is None
    assert registration not in registrations_for_model(Product)
    assert registration not in registrations()


def test_redecorating_the_same_class_replaces_its_registration(decorate: Decorate) -> None:
    cls = make_serializer("AgainProductSerializer")
    decorate(cls, stream="test-registry.again")
    first = registration_for_stream("test-registry.again")
    decorate(cls, stream="test-registry.again", description="second")
    second = registration_for_stream("test-registry.again")
    assert second is not first
    assert second is not None
    assert second.description == "second"
    assert [r.stream for r in registrations()].count("test-registry.again") == 1
    assert first not in registrations_for_model(Product)


# --- registration errors, at decoration time ------------------------------------------------------


def test_stream_registered_by_two_classes_names_both(decorate: Decorate) -> None:
    first = make_serializer("FirstProductSerializer")
    second = make_serializer("SecondProductSerializer")
    decorate(first, stream="test-registry.twice")
    with pytest.raises(RegistrationError) as caught:
        decorate(second, stream="test-registry.twice")
    message = str(caught.value)
    assert "'test-registry.twice' is registered twice" in message
    assert f"{__name__}.FirstProductSerializer" in message
    assert f"{__name__}.SecondProductSerializer" in message
    assert registration_for_stream("test-registry.twice") is registration_for_serializer(first)
    assert registration_for_serializer(second) is None


def test_stream_of_the_test_app_cannot_be_taken(decorate: Decorate) -> None:
    with pytest.raises(RegistrationError, match=r"tests\.testapp\.serializers\.ProductSerializer"):
        decorate(make_serializer("ThiefSerializer"), stream="products")
    registration = registration_for_stream("products")
    assert registration is not None
    assert registration.serializer_class is ProductSerializer


def test_plain_serializer_is_refused(decorate: Decorate) -> None:
    class PlainSerializer(serializers.Serializer):
        name = serializers.CharField()

    with pytest.raises(RegistrationError, match=r"ModelSerializer subclass, not .*PlainSerializer"):
        decorate(PlainSerializer, stream="test-registry.plain-serializer")
    assert registration_for_stream("test-registry.plain-serializer") is None


@pytest.mark.parametrize(
    "target",
    [
        pytest.param(lambda: None, id="function"),
        pytest.param(ProductSerializer(), id="serializer-instance"),
        pytest.param("ProductSerializer", id="string"),
    ],
)
def test_non_class_is_refused_naming_it(decorate: Decorate, target: Any) -> None:
    with pytest.raises(RegistrationError) as caught:
        decorate(target, stream="test-registry.non-class")
    assert "ModelSerializer subclass" in str(caught.value)
    assert repr(target) in str(caught.value)


def test_model_serializer_without_meta_model_is_refused(decorate: Decorate) -> None:
    class NoModelSerializer(serializers.ModelSerializer):
        pass

    with pytest.raises(RegistrationError, match=r"NoModelSerializer has no Meta\.model"):
        decorate(NoModelSerializer, stream="test-registry.no-model")


@pytest.mark.parametrize(
    "stream",
    [
        pytest.param("has space", id="space"),
        pytest.param("prodüct", id="unicode"),
        pytest.param("slash/stream", id="slash"),
        pytest.param("s" * 96, id="group-name-of-100-characters"),
    ],
)
def test_invalid_stream_name_is_refused_naming_it(decorate: Decorate, stream: str) -> None:
    with pytest.raises(RegistrationError) as caught:
        decorate(make_serializer("BadStreamSerializer"), stream=stream)
    assert repr(stream) in str(caught.value)
    assert "channel-layer group" in str(caught.value)
    assert registration_for_stream(stream) is None


@pytest.mark.parametrize("stream", ["", None, 5])
def test_stream_that_is_not_a_non_empty_string_is_refused(decorate: Decorate, stream: Any) -> None:
    with pytest.raises(RegistrationError, match="stream must be a non-empty string"):
        decorate(make_serializer("NoStreamSerializer"), stream=stream)


def test_longest_valid_stream_name_is_accepted(decorate: Decorate) -> None:
    # "sms." + 95 characters: a 99-character group name, the longest Channels accepts.
    stream = "s" * 95
    decorate(make_serializer("LongStreamSerializer"), stream=stream)
    assert registration_for_stream(stream) is not None


def test_stream_with_dots_dashes_and_underscores_is_accepted(decorate: Decorate) -> None:
    decorate(make_serializer("PunctuatedSerializer"), stream="Shop.products-v2_x")
    assert registration_for_stream("Shop.products-v2_x") is not None


def test_two_serializers_generating_one_type_name_is_refused(decorate: Decorate) -> None:
    decorate(make_serializer("TwinSerializer"), stream="test-registry.twin-a")
    second = make_serializer("TwinSerializer", model=Category)
    second.__qualname__ = "OtherTwinSerializer"
    with pytest.raises(RegistrationError) as caught:
        decorate(second, stream="test-registry.twin-b")
    message = str(caught.value)
    assert "TwinData/Event/Fields" in message
    assert f"{__name__}.TwinSerializer" in message
    assert f"{__name__}.OtherTwinSerializer" in message
    assert "name=" in message


def test_name_clash_with_the_test_app_is_refused(decorate: Decorate) -> None:
    with pytest.raises(RegistrationError, match=r"ProductData/Event/Fields"):
        decorate(make_serializer("ProductSerializer"), stream="test-registry.product-clash")


@pytest.mark.parametrize("name", ["Has Space", "1Product", "Prodüct", ""])
def test_invalid_type_name_is_refused(decorate: Decorate, name: str) -> None:
    with pytest.raises(RegistrationError, match="not a valid GraphQL type name"):
        decorate(make_serializer("NamedSerializer"), stream="test-registry.bad-name", name=name)


def test_class_named_just_serializer_needs_a_name(decorate: Decorate) -> None:
    with pytest.raises(RegistrationError, match=r"Serializer: '' is not a valid GraphQL type name"):
        decorate(make_serializer("Serializer"), stream="test-registry.unnamed")


def test_fields_becoming_one_enum_member_are_refused(decorate: Decorate) -> None:
    class CollidingSerializer(serializers.ModelSerializer):
        inStock = serializers.BooleanField(source="in_stock")

        class Meta:
            model = Product
            fields = ("in_stock", "inStock")

    with pytest.raises(RegistrationError, match=r"'in_stock' and 'inStock' both become .*IN_STOCK"):
        decorate(CollidingSerializer, stream="test-registry.colliding")


def test_field_name_that_is_no_graphql_name_is_refused(decorate: Decorate) -> None:
    class DashedSerializer(serializers.ModelSerializer):
        class Meta:
            model = Product
            fields = ("id",)

        def get_fields(self) -> dict[str, serializers.Field]:
            return {**super().get_fields(), "in-stock": serializers.BooleanField()}

    with pytest.raises(RegistrationError, match=r"DashedSerializer\.in-stock: 'in-stock' is not"):
        decorate(DashedSerializer, stream="test-registry.dashed")


def test_refused_registration_leaves_no_trace(decorate: Decorate) -> None:
    before = registrations()
    with pytest.raises(RegistrationError):
        decorate(make_serializer("ProductSerializer"), stream="test-registry.no-trace")
    assert registrations() == before


# --- generated names ------------------------------------------------------------------------------


def test_name_override_names_every_generated_type_and_field(decorate: Decorate) -> None:
    cls = decorate(
        make_serializer("LongWindedProductSerializer"), stream="test-registry.named", name="Item"
    )
    schema = strawberry.Schema(query=Query, subscription=subscription_type(cls))
    assert object_fields(schema, "ItemData") == ["id", "name"]
    assert enum_members(schema, "ItemFields") == ["ID", "NAME"]
    assert object_fields(schema, "ItemEvent") == [
        "stream",
        "action",
        "model",
        "data",
        "cursor",
        "moved",
    ]
    assert object_fields(schema, "Subscription") == ["itemSubscription", "itemChanged"]
    graphql_schema = build_schema(schema.as_str())
    for suffix in ("Data", "Fields", "Event"):
        assert graphql_schema.get_type(f"LongWindedProduct{suffix}") is None


def test_default_name_is_class_name_less_serializer(decorate: Decorate) -> None:
    cls = decorate(make_serializer("GadgetSerializer"), stream="test-registry.gadget")
    schema = strawberry.Schema(query=Query, subscription=subscription_type(cls))
    assert object_fields(schema, "Subscription") == ["gadgetSubscription", "gadgetChanged"]
    assert object_fields(schema, "GadgetData") == ["id", "name"]


def test_fields_enum_members_are_upper_snake_valued_by_field_name() -> None:
    registration = registration_for_serializer(ProductSerializer)
    assert registration is not None
    members = {member.name: member.value for member in registration.fields_enum}  # type: ignore[attr-defined]
    assert members == {
        "ID": "id",
        "NAME": "name",
        "PRICE": "price",
        "IN_STOCK": "in_stock",
        "CREATED": "created",
        "TAGS": "tags",
        "STATUS": "status",
        "CATEGORY": "category",
    }


def test_fields_all_is_resolved_through_the_serializer() -> None:
    registration = registration_for_serializer(ProductSerializer)
    assert registration is not None
    assert registration.field_names == tuple(ProductSerializer().fields)
    assert object_fields(testapp_schema, "ProductData") == [
        "id",
        "name",
        "price",
        "inStock",
        "created",
        "tags",
        "status",
        "category",
    ]


def test_exclude_is_resolved_through_the_serializer() -> None:
    registration = registration_for_serializer(ReviewSerializer)
    assert registration is not None
    assert registration.field_names == ("id", "rating", "product")
    assert object_fields(testapp_schema, "ReviewData") == ["id", "rating", "product"]
    assert enum_members(testapp_schema, "ReviewFields") == ["ID", "RATING", "PRODUCT"]


def test_exclude_with_a_declared_extra_field(decorate: Decorate) -> None:
    class ExtraReviewSerializer(serializers.ModelSerializer):
        product_name = serializers.CharField(source="product.name", read_only=True)

        class Meta:
            model = Review
            exclude = ("text", "product")

    decorate(ExtraReviewSerializer, stream="test-registry.extra-review")
    schema = strawberry.Schema(query=Query, subscription=subscription_type(ExtraReviewSerializer))
    assert object_fields(schema, "ExtraReviewData") == ["id", "productName", "rating"]
    assert enum_members(schema, "ExtraReviewFields") == ["ID", "PRODUCT_NAME", "RATING"]


def test_event_type_holds_stream_action_model_data_and_cursor() -> None:
    graphql_schema = build_schema(testapp_schema.as_str())
    event_type = graphql_schema.get_type("ProductEvent")
    assert isinstance(event_type, GraphQLObjectType)
    assert {name: str(field.type) for name, field in event_type.fields.items()} == {
        "stream": "String!",
        "action": "Action!",
        "model": "String!",
        "data": "ProductData!",
        "cursor": "String!",
        "moved": "Boolean!",
    }
    assert event_type.description == "Product Subscription"


# --- subscription_type() --------------------------------------------------------------------------


def test_subscription_type_without_argument_takes_every_registration(decorate: Decorate) -> None:
    decorate(make_serializer("LateProductSerializer"), stream="test-registry.late")
    schema = strawberry.Schema(query=Query, subscription=subscription_type())
    expected: list[str] = []
    for registration in registrations():
        expected += [registration.control_field, registration.changed_field]
    assert object_fields(schema, "Subscription") == expected
    assert "lateProductSubscription" in expected


def test_subscription_type_with_arguments_takes_only_those(decorate: Decorate) -> None:
    schema = strawberry.Schema(
        query=Query, subscription=subscription_type(ReviewSerializer, ProductSerializer)
    )
    assert object_fields(schema, "Subscription") == [
        "reviewSubscription",
        "reviewChanged",
        "productSubscription",
        "productChanged",
    ]
    assert build_schema(schema.as_str()).get_type("CategoryData") is None


def test_subscription_type_refuses_an_undecorated_serializer() -> None:
    undecorated = make_serializer("UndecoratedSerializer")
    with pytest.raises(
        RegistrationError, match=r"UndecoratedSerializer is not decorated with @model_subscription"
    ):
        subscription_type(ProductSerializer, undecorated)


def test_control_and_changed_fields_have_the_designed_arguments() -> None:
    graphql_schema = build_schema(testapp_schema.as_str())
    subscription = graphql_schema.subscription_type
    assert subscription is not None
    control = subscription.fields["productSubscription"]
    assert {name: str(arg.type) for name, arg in control.args.items()} == {
        "operation": "Operation!",
        "action": "Action!",
        "channelId": "String!",
        "id": "ID",
        "data": "[ProductFields!]",
        "after": "String",
        "where": "ProductFilter",
    }
    assert str(control.type) == "SubscriptionResult!"
    changed = subscription.fields["productChanged"]
    assert {name: str(arg.type) for name, arg in changed.args.items()} == {
        "action": "Action!",
        "id": "ID",
        "after": "String",
        "where": "ProductFilter",
    }
    assert str(changed.type) == "ProductEvent!"
    assert (
        "productChanged(action: Action! = ALL_ACTIONS, id: ID = null, after: String = null, "
        "where: ProductFilter = null): ProductEvent!" in testapp_schema.as_str()
    )


@strawberry.type
class UserSubscription:
    @strawberry.subscription
    async def countdown(self, start: int) -> AsyncGenerator[int, None]:
        for n in range(start, 0, -1):
            yield n


def test_merge_types_combines_generated_and_user_subscriptions() -> None:
    merged = merge_types("Subscription", (UserSubscription, subscription_type(ProductSerializer)))
    schema = strawberry.Schema(query=Query, subscription=merged)
    assert object_fields(schema, "Subscription") == [
        "countdown",
        "productSubscription",
        "productChanged",
    ]


async def test_user_subscription_runs_in_the_merged_schema() -> None:
    merged = merge_types(
        "Subscription", (UserSubscription, subscription_type(ProductSerializer, ReviewSerializer))
    )
    schema = strawberry.Schema(query=Query, subscription=merged)
    results = await schema.subscribe("subscription { countdown(start: 3) }")
    assert not hasattr(results, "errors"), results
    values = [result.data async for result in results]
    assert values == [{"countdown": 3}, {"countdown": 2}, {"countdown": 1}]


# --- serializing for events -----------------------------------------------------------------------


def test_registration_serializes_like_the_serializer(decorate: Decorate) -> None:
    cls = decorate(
        make_serializer("EventProductSerializer", fields=("id", "name", "category")),
        stream="test-registry.serialize",
    )
    registration = registration_for_serializer(cls)
    assert registration is not None
    product = Product(pk=4, name="Tea", category=Category(pk=9, name="Drinks"))
    assert (
        registration.serialize(product)
        == cls(product).data
        == {
            "id": 4,
            "name": "Tea",
            "category": 9,
        }
    )


def test_registration_serializes_hyperlinked_fields_without_a_request(
    decorate: Decorate,
) -> None:
    class LinkedProductSerializer(serializers.ModelSerializer):
        category: serializers.HyperlinkedRelatedField[Category] = (
            serializers.HyperlinkedRelatedField(view_name="category-detail", read_only=True)
        )

        class Meta:
            model = Product
            fields = ("id", "category")

    decorate(LinkedProductSerializer, stream="test-registry.linked")
    registration = registration_for_serializer(LinkedProductSerializer)
    assert registration is not None
    product = Product(pk=4, name="Tea", category=Category(pk=9, name="Drinks"))
    with override_settings(ROOT_URLCONF=__name__):
        data = registration.serialize(product)
    assert data == {"id": 4, "category": "/categories/9/"}
