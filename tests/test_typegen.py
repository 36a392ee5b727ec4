"""Type generation: the printed schema of the test app, the DRF field to GraphQL type mapping,
and the conversion of represented values back into what each GraphQL type serializes."""

from __future__ import annotations

import datetime
import difflib
import json
import os
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import strawberry
from django.contrib.contenttypes.models import ContentType
from django.db import models
from graphql import GraphQLEnumType, GraphQLObjectType, build_schema
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer

from strawberry_model_subs import (
    RegistrationError,
    UnsupportedFieldError,
    model_subscription,
    subscription_type,
)
from strawberry_model_subs.events import encode_data
from strawberry_model_subs.registry import registration_for_serializer, unregister
from strawberry_model_subs.typegen import FIELD_TYPES, Context, Mapped, build_data_type
from tests.testapp.models import Category, Everything, Product, Review, Tag, Ticket
from tests.testapp.schema import schema as testapp_schema
from tests.testapp.serializers import (
    EverythingSerializer,
    NestedCategorySerializer,
    TagSerializer,
)

SCHEMA_FILE = Path(__file__).with_name("schema.graphql")
UPDATE_SCHEMA_ENV = "SMS_UPDATE_SCHEMA"


@strawberry.type
class Query:
    ok: bool = True


# --- the test app's schema, pinned ---------------------------------------------------------------


def test_printed_schema_matches_schema_graphql() -> None:
    printed = testapp_schema.as_str() + "\n"
    if os.environ.get(UPDATE_SCHEMA_ENV) == "1":
        SCHEMA_FILE.write_text(printed, encoding="utf-8")
        pytest.skip(
            f"{UPDATE_SCHEMA_ENV}=1: wrote {SCHEMA_FILE}; review its diff before committing"
        )
    expected = SCHEMA_FILE.read_text(encoding="utf-8")
    diff = "".join(
        difflib.unified_diff(
            expected.splitlines(keepends=True),
            printed.splitlines(keepends=True),
            fromfile=str(SCHEMA_FILE.relative_to(SCHEMA_FILE.parent.parent)),
            tofile="tests.testapp.schema.schema.as_str()",
        )
    )
    assert printed == expected, (
        f"The generated schema differs from {SCHEMA_FILE.name}:\n{diff}\n"
        f"If the change is intended, regenerate the file with {UPDATE_SCHEMA_ENV}=1 "
        f"(.venv/bin/python -m pytest tests/test_typegen.py -k printed_schema) and review the diff."
    )


# --- helpers --------------------------------------------------------------------------------------

Register = Callable[..., strawberry.Schema]


@pytest.fixture
def register() -> Iterator[Register]:
    """Register an ad-hoc serializer under a unique stream and return a schema holding it.

    Every stream a test registers is unregistered afterwards, whether the test passes or not.
    """
    streams: list[str] = []

    def do(
        serializer_class: type[serializers.ModelSerializer],
        *,
        name: str | None = None,
        field_types: dict[str, Any] | None = None,
    ) -> strawberry.Schema:
        stream = f"test-types.{len(streams)}.{serializer_class.__name__.lower()}"
        model_subscription(stream=stream, name=name, field_types=field_types)(serializer_class)
        streams.append(stream)
        return strawberry.Schema(query=Query, subscription=subscription_type(serializer_class))

    try:
        yield do
    finally:
        for stream in streams:
            unregister(stream)


def probe_serializer(
    model: type[models.Model],
    field: serializers.Field | None = None,
    method: Callable[..., Any] | None = None,
) -> type[serializers.ModelSerializer]:
    """``ProbeSerializer`` over ``model`` with one output field, ``value``."""
    namespace: dict[str, Any] = {
        "Meta": type("Meta", (), {"model": model, "fields": ("value",)}),
    }
    if field is not None:
        namespace["value"] = field
    if method is not None:
        namespace["value"] = serializers.SerializerMethodField()
        namespace["get_value"] = method
    return type("ProbeSerializer", (serializers.ModelSerializer,), namespace)


def graphql_field_type(schema: strawberry.Schema, type_name: str, field_name: str) -> str:
    """The GraphQL type of ``type_name.field_name`` as the printed SDL declares it (``[Int!]!``)."""
    graphql_type = build_schema(schema.as_str()).get_type(type_name)
    assert isinstance(graphql_type, GraphQLObjectType), f"{type_name} is not an object type"
    assert field_name in graphql_type.fields, f"{type_name} has no field {field_name}"
    return str(graphql_type.fields[field_name].type)


def query_schema(data_type: type, value: Any = None) -> strawberry.Schema:
    """A schema whose query field ``item`` returns ``value`` typed as ``data_type``."""
    query_type = strawberry.type(
        type(
            "Query",
            (),
            {"item": strawberry.field(resolver=lambda: value, graphql_type=data_type)},
        )
    )
    return strawberry.Schema(query=query_type)


def data_field_names(schema: strawberry.Schema, type_name: str) -> list[str]:
    graphql_type = build_schema(schema.as_str()).get_type(type_name)
    assert isinstance(graphql_type, GraphQLObjectType)
    return list(graphql_type.fields)


# Methods for SerializerMethodField probes; module-level so their annotations resolve.
def get_int(self: Any, obj: Any) -> int:
    return 1


def get_optional_str(self: Any, obj: Any) -> str | None:
    return None


def get_float_list(self: Any, obj: Any) -> list[float]:
    return [1.5]


def get_datetime(self: Any, obj: Any) -> datetime.datetime:
    return datetime.datetime(2024, 1, 2, tzinfo=datetime.timezone.utc)


def get_unannotated(self: Any, obj: Any):
    return {"any": "thing"}


def get_decimal(self: Any, obj: Any) -> Decimal:
    return Decimal("12345678901234567.89")


def get_bytes(self: Any, obj: Any) -> bytes:
    return b""


def get_int_or_str(self: Any, obj: Any) -> int | str:
    return 1


class ProductNameSerializer(serializers.ModelSerializer):
    class Meta:
        model = Product
        fields = ("id", "name")


# --- DRF field -> GraphQL type --------------------------------------------------------------------

FieldFactory = Callable[[], serializers.Field]

MAPPING_CASES = [
    # Integers: Int, or BigInt when the model field is big.
    pytest.param(Everything, lambda: serializers.IntegerField(source="integer_field"), "Int!",
                 id="IntegerField-Int"),
    pytest.param(Everything, lambda: serializers.IntegerField(source="big_integer_field"),
                 "BigInt!", id="IntegerField-over-BigIntegerField-BigInt"),
    pytest.param(Everything, lambda: serializers.IntegerField(source="positive_big_integer_field"),
                 "BigInt!", id="IntegerField-over-PositiveBigIntegerField-BigInt"),
    pytest.param(Everything, lambda: serializers.IntegerField(source="id", read_only=True),
                 "BigInt!", id="IntegerField-over-BigAutoField-BigInt"),
    pytest.param(Everything, lambda: serializers.FloatField(source="float_field"), "Float!",
                 id="FloatField-Float"),
    pytest.param(Everything,
                 lambda: serializers.DecimalField(max_digits=10, decimal_places=2,
                                                  source="decimal_field"),
                 "Decimal!", id="DecimalField-Decimal"),
    pytest.param(Everything, lambda: serializers.BooleanField(source="boolean_field"),
                 "Boolean!", id="BooleanField-Boolean"),
    # Text.
    pytest.param(Everything, lambda: serializers.CharField(source="char_field"), "String!",
                 id="CharField-String"),
    pytest.param(Everything, lambda: serializers.EmailField(source="email_field"), "String!",
                 id="EmailField-String"),
    pytest.param(Everything, lambda: serializers.SlugField(source="slug_field"), "String!",
                 id="SlugField-String"),
    pytest.param(Everything, lambda: serializers.URLField(source="url_field"), "String!",
                 id="URLField-String"),
    pytest.param(Everything, lambda: serializers.RegexField(r"^\w*$", source="char_field"),
                 "String!", id="RegexField-String"),
    pytest.param(Everything, lambda: serializers.UUIDField(source="uuid_field"), "UUID!",
                 id="UUIDField-UUID"),
    # Dates and times: typed when rendered as ISO 8601, String with another output format.
    pytest.param(Everything, lambda: serializers.DateTimeField(source="date_time_field"),
                 "DateTime!", id="DateTimeField-DateTime"),
    pytest.param(Everything,
                 lambda: serializers.DateTimeField(format="%Y", source="date_time_field"),
                 "String!", id="DateTimeField-non-ISO-format-String"),
    pytest.param(Everything, lambda: serializers.DateField(source="date_field"), "Date!",
                 id="DateField-Date"),
    pytest.param(Everything, lambda: serializers.DateField(format="%d/%m/%Y", source="date_field"),
                 "String!", id="DateField-non-ISO-format-String"),
    pytest.param(Everything, lambda: serializers.TimeField(source="time_field"), "Time!",
                 id="TimeField-Time"),
    pytest.param(Everything, lambda: serializers.TimeField(format="%H h", source="time_field"),
                 "String!", id="TimeField-non-ISO-format-String"),
    pytest.param(Everything, lambda: serializers.DurationField(source="duration_field"),
                 "String!", id="DurationField-String"),
    # Choices.
    pytest.param(Everything, lambda: serializers.ChoiceField(["s", "m", "l"], source="size"),
                 "ProbeValueChoice!", id="ChoiceField-string-choices-enum"),
    pytest.param(Everything, lambda: serializers.ChoiceField([1, 2, 3], source="priority"),
                 "Int!", id="ChoiceField-integer-choices-Int"),
    pytest.param(Everything,
                 lambda: serializers.ChoiceField(["s", "m"], allow_blank=True, source="size"),
                 "String!", id="ChoiceField-allow_blank-String"),
    pytest.param(Everything,
                 lambda: serializers.ChoiceField(["in-stock", "sold out"], source="char_field"),
                 "String!", id="ChoiceField-choices-not-GraphQL-names-String"),
    pytest.param(Everything,
                 lambda: serializers.MultipleChoiceField(choices=["a", "b"], source="json_field"),
                 "[String!]!", id="MultipleChoiceField-list-of-String"),
    # JSON and lists.
    pytest.param(Everything, lambda: serializers.JSONField(source="json_field"), "JSON!",
                 id="JSONField-JSON"),
    pytest.param(Everything, lambda: serializers.DictField(source="json_field"), "JSON!",
                 id="DictField-JSON"),
    pytest.param(Everything,
                 lambda: serializers.ListField(child=serializers.IntegerField(),
                                               source="json_field"),
                 "[Int!]!", id="ListField-of-IntegerField"),
    pytest.param(Everything,
                 lambda: serializers.ListField(child=serializers.DateField(), source="json_field"),
                 "[Date!]!", id="ListField-of-DateField"),
    # Relations.
    pytest.param(Review, lambda: serializers.PrimaryKeyRelatedField(source="product",
                                                                    read_only=True),
                 "ID!", id="PrimaryKeyRelatedField-ID"),
    pytest.param(Everything,
                 lambda: serializers.PrimaryKeyRelatedField(source="tags", many=True,
                                                            read_only=True),
                 "[ID!]!", id="PrimaryKeyRelatedField-many-list-of-ID"),
    pytest.param(Review,
                 lambda: serializers.HyperlinkedRelatedField(view_name="product-detail",
                                                             source="product", read_only=True),
                 "String!", id="HyperlinkedRelatedField-String"),
    pytest.param(Review,
                 lambda: serializers.SlugRelatedField(slug_field="name", source="product",
                                                      read_only=True),
                 "String!", id="SlugRelatedField-String"),
    pytest.param(Review, lambda: serializers.StringRelatedField(source="product"), "String!",
                 id="StringRelatedField-String"),
    pytest.param(Everything,
                 lambda: serializers.SlugRelatedField(slug_field="label", source="tags",
                                                      many=True, read_only=True),
                 "[String!]!", id="SlugRelatedField-many-list-of-String"),
    # Nested serializers: their own Data type, or the registered one's.
    pytest.param(Review, lambda: ProductNameSerializer(source="product", read_only=True),
                 "ProbeValueData!", id="nested-serializer-own-Data-type"),
    pytest.param(Everything, lambda: TagSerializer(source="tags", many=True, read_only=True),
                 "[TagData!]!", id="nested-registered-serializer-many-list-of-its-Data"),
    # Nullability: allow_null, or a nullable model field DRF renders as null.
    pytest.param(Everything, lambda: serializers.CharField(source="char_field", allow_null=True),
                 "String", id="allow_null-nullable"),
    pytest.param(Everything,
                 lambda: serializers.IntegerField(source="integer_field", allow_null=True),
                 "Int", id="IntegerField-allow_null-nullable"),
    pytest.param(Everything, lambda: serializers.CharField(source="nickname"), "String",
                 id="nullable-model-field-nullable"),
    pytest.param(Everything, lambda: serializers.PrimaryKeyRelatedField(source="category",
                                                                        read_only=True),
                 "ID", id="PrimaryKeyRelatedField-over-nullable-ForeignKey-nullable"),
    pytest.param(Everything, lambda: NestedCategorySerializer(source="category", read_only=True),
                 "ProbeValueData", id="nested-serializer-over-nullable-ForeignKey-nullable"),
    pytest.param(Everything,
                 lambda: serializers.CharField(source="category.name", read_only=True),
                 "String", id="dotted-source-through-nullable-ForeignKey-nullable"),
]  # fmt: skip


@pytest.mark.parametrize(("model", "make_field", "expected"), MAPPING_CASES)
def test_drf_field_maps_to_graphql_type(
    register: Register, model: type[models.Model], make_field: FieldFactory, expected: str
) -> None:
    schema = register(probe_serializer(model, make_field()))
    assert graphql_field_type(schema, "ProbeData", "value") == expected


METHOD_CASES = [
    pytest.param(get_int, "Int!", id="int-Int"),
    pytest.param(get_optional_str, "String", id="optional-str-nullable-String"),
    pytest.param(get_float_list, "[Float!]!", id="list-of-float"),
    pytest.param(get_datetime, "DateTime!", id="datetime-DateTime"),
    pytest.param(get_unannotated, "JSON", id="no-annotation-nullable-JSON"),
]


def test_integer_field_over_auto_field_is_int() -> None:
    # Built without registering: registering would connect signals to ContentType for good.
    class ContentTypeIdSerializer(serializers.ModelSerializer):
        class Meta:
            model = ContentType
            fields = ("id",)

    data_type, _ = build_data_type(ContentTypeIdSerializer(), "ContentTypeId", "ids", {})
    assert graphql_field_type(query_schema(data_type), "ContentTypeIdData", "id") == "Int!"


@pytest.mark.parametrize(("method", "expected"), METHOD_CASES)
def test_serializer_method_field_is_typed_from_its_return_annotation(
    register: Register, method: Callable[..., Any], expected: str
) -> None:
    schema = register(probe_serializer(Everything, method=method))
    assert graphql_field_type(schema, "ProbeData", "value") == expected


@pytest.mark.parametrize(
    ("method", "reason"),
    [
        pytest.param(get_bytes, "has no GraphQL type", id="bytes"),
        pytest.param(get_int_or_str, "has no single GraphQL type", id="int-or-str"),
    ],
)
def test_serializer_method_field_with_untypable_annotation_names_the_field(
    register: Register, method: Callable[..., Any], reason: str
) -> None:
    with pytest.raises(UnsupportedFieldError, match=reason) as caught:
        register(probe_serializer(Everything, method=method))
    assert "ProbeSerializer.value" in str(caught.value)
    assert "field_types" in str(caught.value)


def test_string_choices_become_an_enum_of_upper_case_members(register: Register) -> None:
    schema = register(probe_serializer(Product, serializers.ChoiceField(["draft", "published"])))
    enum_type = build_schema(schema.as_str()).get_type("ProbeValueChoice")
    assert isinstance(enum_type, GraphQLEnumType)
    assert list(enum_type.values) == ["DRAFT", "PUBLISHED"]


def test_model_choices_become_an_enum_named_after_type_field_and_choice() -> None:
    assert graphql_field_type(testapp_schema, "EverythingData", "size") == "EverythingSizeChoice!"
    enum_type = build_schema(testapp_schema.as_str()).get_type("EverythingSizeChoice")
    assert isinstance(enum_type, GraphQLEnumType)
    assert list(enum_type.values) == ["S", "M", "L"]


def test_write_only_fields_are_absent_from_the_data_type(register: Register) -> None:
    class WriteOnlyProbeSerializer(serializers.ModelSerializer):
        password = serializers.CharField(write_only=True)

        class Meta:
            model = Product
            fields = ("id", "name", "password")

    schema = register(WriteOnlyProbeSerializer)
    assert data_field_names(schema, "WriteOnlyProbeData") == ["id", "name"]
    fields_enum = build_schema(schema.as_str()).get_type("WriteOnlyProbeFields")
    assert isinstance(fields_enum, GraphQLEnumType)
    assert list(fields_enum.values) == ["ID", "NAME"]


def test_testapp_write_only_field_is_absent() -> None:
    assert "secret" not in data_field_names(testapp_schema, "EverythingData")


def test_fields_are_camel_cased_in_serializer_order(register: Register) -> None:
    class CamelProbeSerializer(serializers.ModelSerializer):
        class Meta:
            model = Product
            fields = ("in_stock", "id", "created")

    schema = register(CamelProbeSerializer)
    assert data_field_names(schema, "CamelProbeData") == ["inStock", "id", "created"]


# --- edge cases of the mapping --------------------------------------------------------------------


def test_list_field_with_nullable_child_has_nullable_items(register: Register) -> None:
    field = serializers.ListField(
        child=serializers.IntegerField(allow_null=True), source="json_field"
    )
    schema = register(probe_serializer(Everything, field))
    assert graphql_field_type(schema, "ProbeData", "value") == "[Int]!"


def test_integer_field_with_dotted_source_to_big_auto_field_is_big_int(
    register: Register,
) -> None:
    field = serializers.IntegerField(source="product.id", read_only=True)
    schema = register(probe_serializer(Review, field))
    assert graphql_field_type(schema, "ProbeData", "value") == "BigInt!"


def test_dotted_source_through_non_null_relations_is_not_nullable(register: Register) -> None:
    field = serializers.CharField(source="product.name", read_only=True)
    schema = register(probe_serializer(Review, field))
    assert graphql_field_type(schema, "ProbeData", "value") == "String!"


def test_reverse_relation_many_is_not_nullable(register: Register) -> None:
    # many=True makes a ManyRelatedField, which the stubs do not tell from the child's type.
    field: serializers.Field = serializers.PrimaryKeyRelatedField(
        source="reviews", many=True, read_only=True
    )
    schema = register(probe_serializer(Product, field))
    assert graphql_field_type(schema, "ProbeData", "value") == "[ID!]!"


def test_choice_field_named_event_does_not_clash_with_the_event_type(register: Register) -> None:
    class ClashSerializer(serializers.ModelSerializer):
        event = serializers.ChoiceField(["draft", "published"], source="status", read_only=True)

        class Meta:
            model = Product
            fields = ("id", "event")

    # Either fix is fine: refuse at decoration time naming the field, or name the enum apart.
    refusal: RegistrationError | None = None
    try:
        schema = register(ClashSerializer)
    except RegistrationError as exc:
        refusal = exc
    if refusal is not None:
        assert "ClashSerializer.event" in str(refusal)
    else:
        assert graphql_field_type(schema, "ClashEvent", "data") == "ClashData!"


# --- extension points and unsupported fields ------------------------------------------------------


class RgbField(serializers.Field):
    """A custom DRF field the built-in mapping does not know."""

    def to_representation(self, value: Any) -> Any:
        return value


class DarkRgbField(RgbField):
    pass


def test_unsupported_field_error_names_serializer_field_and_fix(register: Register) -> None:
    with pytest.raises(UnsupportedFieldError) as caught:
        register(probe_serializer(Everything, RgbField(source="char_field")))
    message = str(caught.value)
    assert "ProbeSerializer.value" in message
    assert "RgbField" in message
    assert "field_types={'value': <type>}" in message


def test_unsupported_field_error_is_a_registration_error() -> None:
    assert issubclass(UnsupportedFieldError, RegistrationError)


def test_field_types_extension_maps_a_custom_field_and_its_subclasses(
    register: Register, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(FIELD_TYPES.mapping, RgbField, Mapped(str))
    schema = register(probe_serializer(Everything, DarkRgbField(source="char_field")))
    assert graphql_field_type(schema, "ProbeData", "value") == "String!"


def test_field_types_extension_accepts_a_mapper_function(
    register: Register, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[str, str]] = []

    def mapper(field: serializers.Field, ctx: Context) -> Mapped:
        seen.append((ctx.type_name, ctx.field_name))
        return Mapped(int, nullable=True)

    monkeypatch.setitem(FIELD_TYPES.mapping, RgbField, mapper)
    schema = register(probe_serializer(Everything, RgbField(source="integer_field")))
    assert graphql_field_type(schema, "ProbeData", "value") == "Int"
    assert seen == [("Probe", "value")]


def test_field_types_override_types_one_field_as_nullable(register: Register) -> None:
    schema = register(
        probe_serializer(Everything, RgbField(source="integer_field")),
        field_types={"value": int},
    )
    assert graphql_field_type(schema, "ProbeData", "value") == "Int"


def test_field_types_override_wins_over_the_builtin_mapping(register: Register) -> None:
    schema = register(
        probe_serializer(Everything, serializers.CharField(source="char_field")),
        field_types={"value": strawberry.ID},
    )
    assert graphql_field_type(schema, "ProbeData", "value") == "ID"


def test_field_types_naming_an_unknown_field_is_a_registration_error(register: Register) -> None:
    with pytest.raises(RegistrationError, match=r"ProbeSerializer: field_types names nope"):
        register(
            probe_serializer(Everything, serializers.CharField(source="char_field")),
            field_types={"nope": int},
        )


# --- runtime: represented values resolve through the generated types ------------------------------


def resolve_through(data_type: type, representation: Any, selection: str) -> dict[str, Any]:
    """Resolve ``selection`` on ``data_type`` over a serializer representation, the way events do:
    after a JSON round trip (events cross the channel layer as JSON text)."""
    wire = json.loads(encode_data(representation))
    result = query_schema(data_type, wire).execute_sync(f"{{ item {{ {selection} }} }}")
    assert result.errors is None, result.errors
    assert result.data is not None
    item: dict[str, Any] = result.data["item"]
    return item


EVERYTHING_UUID = uuid.UUID("12345678-1234-5678-1234-567812345678")
TICKET_UUID = uuid.UUID("87654321-4321-8765-4321-876543218765")


@pytest.fixture
def everything_item(db: None) -> dict[str, Any]:
    """A saved Everything with non-default values, resolved through the generated type."""
    category = Category.objects.create(name="Teas")
    ticket = Ticket.objects.create(id=TICKET_UUID, title="T")
    everything = Everything.objects.create(
        big_integer_field=2**40,
        positive_big_integer_field=2**63 - 1,
        integer_field=-7,
        boolean_field=True,
        char_field="chars",
        date_field=datetime.date(2024, 2, 29),
        date_time_field=datetime.datetime(2024, 2, 29, 13, 14, 15, tzinfo=datetime.timezone.utc),
        decimal_field=Decimal("12.50"),
        duration_field=datetime.timedelta(days=1, seconds=5),
        float_field=0.25,
        time_field=datetime.time(13, 14, 15),
        uuid_field=EVERYTHING_UUID,
        size="l",
        priority=3,
        category=category,
        ticket=ticket,
    )
    everything.tags.set(
        [Tag.objects.create(code="b", label="Bee"), Tag.objects.create(code="a", label="Ay")]
    )
    registration = registration_for_serializer(EverythingSerializer)
    assert registration is not None
    selection = (
        "id bigIntegerField positiveBigIntegerField integerField booleanField charField "
        "dateField dateTimeField decimalField durationField floatField timeField uuidField "
        "size priority nickname category ticket tags nestedCategory { name } "
        "nestedCategoryId: nestedCategory { id } "
        "tagList { code label } tagSlugs categoryName label numbers extra flavours summary "
        "nextCheck scores anything"
    )
    return resolve_through(registration.data_type, registration.serialize(everything), selection)


RUNTIME_CASES = [
    pytest.param("bigIntegerField", 2**40, id="BigInt-above-2**31"),
    pytest.param("positiveBigIntegerField", 2**63 - 1, id="BigInt-max"),
    pytest.param("integerField", -7, id="Int"),
    pytest.param("booleanField", True, id="Boolean"),
    pytest.param("charField", "chars", id="String"),
    pytest.param("dateField", "2024-02-29", id="Date"),
    pytest.param("dateTimeField", "2024-02-29T13:14:15+00:00", id="DateTime"),
    pytest.param("decimalField", "12.50", id="Decimal-keeps-its-places"),
    pytest.param("durationField", "1 00:00:05", id="Duration-as-DRF-String"),
    pytest.param("floatField", 0.25, id="Float"),
    pytest.param("timeField", "13:14:15", id="Time"),
    pytest.param("uuidField", str(EVERYTHING_UUID), id="UUID"),
    pytest.param("size", "L", id="enum-member-name"),
    pytest.param("priority", 3, id="integer-choice-Int"),
    pytest.param("nickname", None, id="null"),
    pytest.param("ticket", str(TICKET_UUID), id="ID-of-UUID-primary-key"),
    pytest.param("tags", ["a", "b"], id="list-of-ID-of-string-primary-keys"),
    pytest.param("nestedCategory", {"name": "Teas"}, id="nested-object"),
    pytest.param("tagList", [{"code": "a", "label": "Ay"}, {"code": "b", "label": "Bee"}],
                 id="nested-list"),
    pytest.param("tagSlugs", ["Ay", "Bee"], id="slug-list"),
    pytest.param("categoryName", "Teas", id="dotted-source"),
    pytest.param("label", "Teas", id="StringRelatedField"),
    pytest.param("numbers", [], id="list-default"),
    pytest.param("extra", {}, id="JSON-object"),
    pytest.param("flavours", [], id="MultipleChoiceField-empty"),
    pytest.param("summary", "chars/-7", id="method-str"),
    pytest.param("nextCheck", "2024-03-01T13:14:15+00:00", id="method-datetime"),
    pytest.param("scores", [0.25, 0.5], id="method-list-of-float"),
]  # fmt: skip


@pytest.mark.parametrize(("field", "expected"), RUNTIME_CASES)
def test_represented_value_resolves_through_generated_type(
    everything_item: dict[str, Any], field: str, expected: Any
) -> None:
    value = everything_item[field]
    if field in UNORDERED:  # many-to-many rows come in no defined order
        value = sorted(value, key=json.dumps)
    assert value == expected


UNORDERED = {"tags", "tagList", "tagSlugs"}


def test_unannotated_method_field_resolves_as_json(everything_item: dict[str, Any]) -> None:
    assert everything_item["anything"] == {"pk": everything_item["id"]}


def test_foreign_key_resolves_as_id_string_and_nested_id_as_big_int(
    everything_item: dict[str, Any],
) -> None:
    nested_id = everything_item["nestedCategoryId"]["id"]
    assert isinstance(nested_id, int)
    assert everything_item["category"] == str(nested_id)


def test_list_of_datetimes_converts_each_item() -> None:
    class MomentsSerializer(serializers.Serializer):
        moments = serializers.ListField(child=serializers.DateTimeField())

    data_type, _ = build_data_type(MomentsSerializer(), "Moments", "moments", {})
    moments = [
        datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc),
        datetime.datetime(2024, 6, 1, 12, 30, tzinfo=datetime.timezone.utc),
    ]
    representation = MomentsSerializer({"moments": moments}).data
    item = resolve_through(data_type, representation, "moments")
    assert item["moments"] == ["2024-01-01T00:00:00+00:00", "2024-06-01T12:30:00+00:00"]


def test_non_iso_datetime_format_is_passed_through_as_text() -> None:
    class YearSerializer(serializers.Serializer):
        year = serializers.DateTimeField(format="%Y")

    data_type, _ = build_data_type(YearSerializer(), "Year", "year", {})
    representation = YearSerializer(
        {"year": datetime.datetime(1999, 5, 1, tzinfo=datetime.timezone.utc)}
    ).data
    assert resolve_through(data_type, representation, "year") == {"year": "1999"}


def test_big_int_scalar_rejects_a_float() -> None:
    class BigSerializer(serializers.ModelSerializer):
        class Meta:
            model = Everything
            fields = ("big_integer_field",)

    data_type, _ = build_data_type(BigSerializer(), "Big", "big", {})
    schema = query_schema(data_type, {"big_integer_field": 1.5})
    result = schema.execute_sync("{ item { bigIntegerField } }")
    assert result.errors is not None
    assert "BigInt cannot represent 1.5" in str(result.errors[0])


def test_datetime_field_with_format_none_resolves_after_json_round_trip() -> None:
    class NativeSerializer(serializers.Serializer):
        moment = serializers.DateTimeField(format=None)

    data_type, _ = build_data_type(NativeSerializer(), "Native", "native", {})
    representation = NativeSerializer(
        {"moment": datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)}
    ).data
    item = resolve_through(data_type, representation, "moment")
    assert item == {"moment": "2024-01-02T03:04:05+00:00"}


def test_a_decimal_a_method_returns_is_rendered_as_drf_renders_it() -> None:
    """Frames carry what DRF's own JSON renderer would: a Decimal from a method is a number."""

    class MoneySerializer(serializers.Serializer):
        amount = serializers.SerializerMethodField()

        get_amount = get_decimal

    data_type, _ = build_data_type(MoneySerializer(), "Money", "money", {})
    representation = MoneySerializer(object()).data
    assert json.loads(JSONRenderer().render(representation)) == json.loads(
        encode_data(representation)
    )
    item = resolve_through(data_type, representation, "amount")
    assert item == {"amount": str(float(Decimal("12345678901234567.89")))}
