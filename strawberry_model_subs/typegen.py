"""DRF serializer fields to Strawberry types, as data.

``FIELD_TYPES`` maps a DRF field class to a :class:`Mapped` GraphQL type, or to a function that
works one out from the bound field; lookups walk the field's MRO (like DRF's ``ClassLookupDict``),
so a subclass of ``CharField`` is a ``String`` unless it is mapped itself. A field with no entry
is an :class:`~strawberry_model_subs.exceptions.UnsupportedFieldError` at decoration time, unless
``@model_subscription(field_types={...})`` names its type.

Generated types resolve from the serializer's representation (a dict of JSON-ready values), so one
serialization serves every subscriber; ``Mapped.convert`` turns a represented value back into what
the GraphQL scalar serializes (an ISO date string into a ``datetime``, say).
"""

from __future__ import annotations

import datetime
import decimal
import enum
import re
import types
import typing
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Optional

import strawberry
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.db.models import ForeignObjectRel
from django.utils.dateparse import parse_date, parse_datetime, parse_time
from rest_framework import ISO_8601, serializers
from rest_framework.settings import api_settings

from .events import Action
from .exceptions import RegistrationError, UnsupportedFieldError
from .scalars import JSON, BigInt

GRAPHQL_NAME_RE = re.compile(r"^[_A-Za-z][_0-9A-Za-z]*$")
BIG_MODEL_FIELDS = (models.BigIntegerField, models.PositiveBigIntegerField, models.BigAutoField)


@dataclass(frozen=True)
class Mapped:
    """A GraphQL type for a field: the annotation Strawberry reads, how to turn a represented value
    into what that type serializes (None: as it is), and whether the type itself admits null."""

    annotation: Any
    convert: Callable[[Any], Any] | None = None
    nullable: bool = False


#: The ``Data`` type already generated for a serializer class, or None: how a nested serializer
#: that is itself decorated reuses its type (given by the decorator).
KnownTypes = Callable[[type], "type | None"]
#: Any DRF field, and any serializer (their stubs are generic in the values they take and give).
AnyField = serializers.Field[Any, Any, Any, Any]
AnySerializer = serializers.BaseSerializer[Any]


def _none_known(serializer_class: type) -> type | None:
    return None


@dataclass(frozen=True)
class Context:
    """What a mapper may need besides the field: the names to build nested types under, and the
    types generated for decorated serializers."""

    type_name: str
    field_name: str
    model: type[models.Model] | None
    serializer_class: type[AnySerializer]
    known: KnownTypes = _none_known


Mapper = Callable[[AnyField, Context], Mapped]


class ClassLookup:
    """A dict keyed by class, looked up along an instance's MRO."""

    def __init__(self, mapping: Mapping[type, Mapped | Mapper]) -> None:
        self.mapping = dict(mapping)

    def __getitem__(self, instance: object) -> Mapped | Mapper:
        for cls in type(instance).__mro__:
            if cls in self.mapping:
                return self.mapping[cls]
        raise KeyError(type(instance).__name__)

    def __setitem__(self, cls: type, value: Mapped | Mapper) -> None:
        self.mapping[cls] = value


def _parser(parse: Callable[[str], Any]) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        if isinstance(value, str):
            parsed = parse(value)
            if parsed is None:
                raise ValueError(f"{value!r} is not an ISO 8601 value")
            return parsed
        return value

    return convert


def _temporal(python_type: type, parse: Callable[[str], Any], setting: str) -> Mapper:
    """Dates and times are typed only when DRF renders them as ISO 8601 (its default);
    a custom output format is passed through as a String."""
    convert = _parser(parse)

    def mapper(field: AnyField, ctx: Context) -> Mapped:
        output_format = getattr(field, "format", serializers.empty)
        if output_format is serializers.empty:
            output_format = getattr(api_settings, setting)
        if output_format is None:  # DRF returns the object itself; JSON makes it ISO text
            return Mapped(python_type, convert)
        if isinstance(output_format, str) and output_format.lower() == ISO_8601:
            return Mapped(python_type, convert)
        return Mapped(str)

    return mapper


def _source_path(
    model: type[models.Model] | None, source: str | None
) -> list[models.Field[Any, Any] | ForeignObjectRel] | None:
    """The model fields a (dotted) source walks through, or None when it leaves the models
    (a property, a method, ``*``)."""
    if model is None or not source or source == "*":
        return None
    path: list[models.Field[Any, Any] | ForeignObjectRel] = []
    for part in source.split("."):
        if model is None:
            return None
        try:
            model_field = model._meta.get_field(part)
        except FieldDoesNotExist:
            # ``category_id`` is the attname of the ``category`` foreign key.
            column = next((f for f in model._meta.concrete_fields if f.attname == part), None)
            if column is None:
                return None
            path.append(column.target_field if isinstance(column, models.ForeignKey) else column)
            model = None
            continue
        path.append(model_field)
        model = model_field.related_model if model_field.is_relation else None
    return path


def _integer(field: AnyField, ctx: Context) -> Mapped:
    # Decided by the model field's class, not by DRF's max_value: that comes from the database
    # backend's ranges (64-bit on SQLite), and the schema must not change with the database.
    path = _source_path(ctx.model, getattr(field, "source", None))
    target = path[-1] if path else None
    while isinstance(target, models.ForeignKey):
        target = target.target_field
    if isinstance(target, BIG_MODEL_FIELDS):
        return Mapped(BigInt)
    return Mapped(int)


def _choice(field: AnyField, ctx: Context) -> Mapped:
    """An enum when every choice is a string that makes a GraphQL name; Int for integer choices;
    String otherwise (and when blank is allowed, since "" cannot be an enum member)."""
    assert isinstance(field, serializers.ChoiceField)
    keys = list(field.choices)
    if keys and all(isinstance(k, int) and not isinstance(k, bool) for k in keys):
        return Mapped(int)
    members = {str(k).upper(): k for k in keys if isinstance(k, str)}
    if (
        not keys
        or field.allow_blank
        or len(members) != len(keys)
        or not all(GRAPHQL_NAME_RE.match(name) for name in members)
    ):
        return Mapped(str)
    # The suffix keeps a field named ``event`` or ``data`` off the generated type names.
    enum_name = f"{ctx.type_name}{_pascal(ctx.field_name)}Choice"
    choice_enum = enum.Enum(enum_name, members)  # type: ignore[misc]
    strawberry.enum(choice_enum, name=enum_name, description=f"Choices of {ctx.field_name}.")
    return Mapped(choice_enum)


def _uuid(field: AnyField, ctx: Context) -> Mapped:
    # The "int" and "urn" formats do not render a UUID string.
    if getattr(field, "uuid_format", "hex_verbose") in ("hex_verbose", "hex"):
        return Mapped(uuid.UUID)
    return Mapped(str)


def _multiple_choice(field: AnyField, ctx: Context) -> Mapped:
    assert isinstance(field, serializers.MultipleChoiceField)
    keys = list(field.choices)
    if keys and all(isinstance(k, int) and not isinstance(k, bool) for k in keys):
        return Mapped(list[int])
    return Mapped(list[str])


def _list(field: AnyField, ctx: Context) -> Mapped:
    assert isinstance(field, serializers.ListField)
    return _list_of(_map_child(field.child, ctx))


def _many_related(field: AnyField, ctx: Context) -> Mapped:
    assert isinstance(field, serializers.ManyRelatedField)
    return _list_of(_map_child(field.child_relation, ctx))


def _list_serializer(field: AnyField, ctx: Context) -> Mapped:
    assert isinstance(field, serializers.ListSerializer)
    assert field.child is not None
    return _list_of(_map_child(field.child, ctx))


def _map_child(child: AnyField, ctx: Context) -> Mapped:
    """A list item's type: nullable when the child field allows null (DRF renders None items)."""
    item = _map_field(child, ctx)
    if child.allow_null and not item.nullable:
        return Mapped(item.annotation, item.convert, nullable=True)
    return item


def _list_of(item: Mapped) -> Mapped:
    annotation = Optional[item.annotation] if item.nullable else item.annotation  # noqa: UP045
    convert = item.convert
    if convert is None:
        return Mapped(list[annotation])  # type: ignore[valid-type]
    return Mapped(
        list[annotation],  # type: ignore[valid-type]
        lambda values: [None if v is None else convert(v) for v in values],
    )


def _nested(field: AnyField, ctx: Context) -> Mapped:
    if not isinstance(field, serializers.Serializer):
        # A BaseSerializer of the project's own declares no fields: its output is whatever its
        # to_representation returns.
        return Mapped(JSON)
    known = ctx.known(type(field))
    if known is not None:
        return Mapped(known)
    type_name = f"{ctx.type_name}{_pascal(ctx.field_name)}"
    data_type, _ = build_data_type(
        field, type_name, f"{ctx.type_name}.{ctx.field_name}", {}, known=ctx.known
    )
    return Mapped(data_type)


def _method(field: AnyField, ctx: Context) -> Mapped:
    """A SerializerMethodField is typed from its method's return annotation (JSON without one)."""
    assert isinstance(field, serializers.SerializerMethodField)
    method = getattr(ctx.serializer_class, field.method_name, None)
    try:
        hints = typing.get_type_hints(method) if method is not None else {}
    except Exception as exc:
        raise UnsupportedFieldError(
            f"{ctx.serializer_class.__name__}.{field.method_name}: cannot read its return "
            f"annotation ({exc}); fix it or map the field with field_types={{...}}."
        ) from exc
    if "return" not in hints:
        return Mapped(JSON, nullable=True)
    try:
        return _python_type(hints["return"])
    except TypeError as exc:
        raise UnsupportedFieldError(
            f"{ctx.serializer_class.__name__}.{ctx.field_name}: {exc}; annotate "
            f"{field.method_name} with a supported type or map the field with "
            f"field_types={{{ctx.field_name!r}: ...}}."
        ) from None


PYTHON_TYPES: dict[Any, Mapped] = {
    bool: Mapped(bool),
    int: Mapped(int),
    float: Mapped(float),
    str: Mapped(str),
    decimal.Decimal: Mapped(decimal.Decimal),
    uuid.UUID: Mapped(uuid.UUID),
    datetime.datetime: Mapped(datetime.datetime, _parser(parse_datetime)),
    datetime.date: Mapped(datetime.date, _parser(parse_date)),
    datetime.time: Mapped(datetime.time, _parser(parse_time)),
    dict: Mapped(JSON),
    Any: Mapped(JSON),
    object: Mapped(JSON),
    JSON: Mapped(JSON),
    BigInt: Mapped(BigInt),
    strawberry.ID: Mapped(strawberry.ID),
}


def _python_type(annotation: Any) -> Mapped:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1:
            inner = _python_type(rest[0])
            return Mapped(inner.annotation, inner.convert, nullable=True)
        raise TypeError(f"a union return annotation {annotation!r} has no single GraphQL type")
    if origin in (list, tuple, set, frozenset) or origin is typing.Sequence:
        if not args:
            return Mapped(list[JSON])
        return _list_of(_python_type(args[0]))
    if origin is dict:
        return Mapped(JSON)
    if annotation in PYTHON_TYPES:
        return PYTHON_TYPES[annotation]
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return Mapped(annotation)
    if hasattr(annotation, "__strawberry_definition__") or hasattr(
        annotation, "_scalar_definition"
    ):
        return Mapped(annotation)
    raise TypeError(f"return annotation {annotation!r} has no GraphQL type")


STRING = Mapped(str)

#: DRF field class -> GraphQL type. Add to it (``FIELD_TYPES[MyField] = Mapped(str)``) to map a
#: custom field project-wide; ``field_types=`` on the decorator maps one field of one serializer.
FIELD_TYPES = ClassLookup(
    {
        serializers.BooleanField: Mapped(bool),
        serializers.CharField: STRING,
        serializers.UUIDField: _uuid,
        serializers.IntegerField: _integer,
        serializers.FloatField: Mapped(float),
        serializers.DecimalField: Mapped(decimal.Decimal),
        serializers.DateTimeField: _temporal(datetime.datetime, parse_datetime, "DATETIME_FORMAT"),
        serializers.DateField: _temporal(datetime.date, parse_date, "DATE_FORMAT"),
        serializers.TimeField: _temporal(datetime.time, parse_time, "TIME_FORMAT"),
        serializers.DurationField: STRING,
        serializers.FilePathField: STRING,
        serializers.MultipleChoiceField: _multiple_choice,
        serializers.ChoiceField: _choice,
        # FileField renders null when no file is set.
        serializers.FileField: Mapped(str, nullable=True),
        # DRF's fallback for model fields it has no class for: value_to_string() output.
        serializers.ModelField: STRING,
        serializers.ListField: _list,
        serializers.DictField: Mapped(JSON),
        serializers.JSONField: Mapped(JSON),
        serializers.ReadOnlyField: Mapped(JSON, nullable=True),
        serializers.SerializerMethodField: _method,
        serializers.ManyRelatedField: _many_related,
        serializers.PrimaryKeyRelatedField: Mapped(strawberry.ID),
        serializers.HyperlinkedRelatedField: STRING,
        serializers.SlugRelatedField: STRING,
        serializers.StringRelatedField: STRING,
        serializers.ListSerializer: _list_serializer,
        serializers.BaseSerializer: _nested,
    }
)


def _map_field(field: AnyField, ctx: Context) -> Mapped:
    try:
        entry = FIELD_TYPES[field]
    except KeyError:
        raise UnsupportedFieldError(
            f"{ctx.serializer_class.__name__}.{ctx.field_name}: DRF field "
            f"{type(field).__name__} has no GraphQL type; pass "
            f"field_types={{{ctx.field_name!r}: <type>}} to @model_subscription."
        ) from None
    return entry if isinstance(entry, Mapped) else entry(field, ctx)


def _is_nullable(field: AnyField, mapped: Mapped, model: type[models.Model] | None) -> bool:
    """Whether DRF can render null for ``field``: it does for ``allow_null``, and whenever the
    attribute is None, so for any source through a nullable model field or relation."""
    if mapped.nullable or field.allow_null:
        return True
    source = getattr(field, "source", None) or ""
    path = _source_path(model, source)
    if path is None:
        # Outside the models DRF's rule applies: a non-required field whose dotted source hits
        # a missing attribute is left out of the representation.
        return "." in source and not field.required
    # A reverse or many-to-many relation is a manager, never None (its .null says otherwise).
    return any(getattr(f, "null", False) and not (f.one_to_many or f.many_to_many) for f in path)


def _pascal(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[_\W]+", name) if part)


def enum_member(field_name: str) -> str:
    """``in_stock`` and ``inStock`` both become ``IN_STOCK``."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", field_name).upper()


def _resolver(key: str, convert: Callable[[Any], Any] | None) -> Callable[..., Any]:
    if convert is None:

        def resolve(root: Mapping[str, Any]) -> Any:
            return root.get(key)

    else:

        def resolve(root: Mapping[str, Any]) -> Any:
            value = root.get(key)
            return None if value is None else convert(value)

    return resolve


def output_fields(serializer: serializers.Serializer[Any]) -> dict[str, AnyField]:
    """The fields a serializer's representation holds, in order (write-only ones never appear)."""
    return {name: f for name, f in serializer.fields.items() if not f.write_only}


def build_data_type(
    serializer: serializers.Serializer[Any],
    type_name: str,
    description: str,
    overrides: Mapping[str, Any],
    known: KnownTypes = _none_known,
    mapped_out: dict[str, Mapped] | None = None,
) -> tuple[type, tuple[str, ...]]:
    """Build the ``{name}Data`` type of a (bound or unbound) serializer instance.

    Returns the Strawberry type and the serializer's output field names, in order. A nested
    serializer for which ``known`` gives a type is typed as that type. ``mapped_out``, when
    given, receives each field's :class:`Mapped` type (the filters are built from them).
    """
    serializer_class = type(serializer)
    meta = getattr(serializer_class, "Meta", None)
    model = getattr(meta, "model", None)
    fields = output_fields(serializer)
    unknown = sorted(set(overrides) - set(fields))
    if unknown:
        raise RegistrationError(
            f"{serializer_class.__name__}: field_types names {', '.join(unknown)}, which the "
            f"serializer does not output (it outputs {', '.join(fields)})."
        )
    namespace: dict[str, Any] = {"__annotations__": {}}
    for name, field in fields.items():
        if not GRAPHQL_NAME_RE.match(name):
            raise RegistrationError(
                f"{serializer_class.__name__}.{name}: {name!r} is not a valid GraphQL name."
            )
        if name in overrides:
            mapped = Mapped(overrides[name], nullable=True)
        else:
            mapped = _map_field(field, Context(type_name, name, model, serializer_class, known))
        if mapped_out is not None:
            mapped_out[name] = mapped
        annotation = mapped.annotation
        if _is_nullable(field, mapped, model):
            annotation = Optional[annotation]  # noqa: UP045
        help_text = getattr(field, "help_text", None)
        namespace[name] = strawberry.field(
            resolver=_resolver(name, mapped.convert),
            graphql_type=annotation,
            description=str(help_text) if help_text else None,
        )
    cls = type(type_name + "Data", (), namespace)
    data_type = strawberry.type(cls, name=type_name + "Data", description=description)
    return data_type, tuple(fields)


def build_fields_enum(type_name: str, field_names: tuple[str, ...]) -> type[enum.Enum]:
    """``{name}Fields``: one UPPER_SNAKE member per output field, valued by the field's name."""
    members: dict[str, str] = {}
    for name in field_names:
        member = enum_member(name)
        if member in members:
            raise RegistrationError(
                f"{type_name}: fields {members[member]!r} and {name!r} both become the enum "
                f"member {member}; rename one."
            )
        members[member] = name
    fields_enum = enum.Enum(type_name + "Fields", members)  # type: ignore[misc]
    strawberry.enum(
        fields_enum,
        name=type_name + "Fields",
        description=f"The fields of {type_name}Data a subscription can ask for.",
    )
    return fields_enum


def _event_cursor(root: strawberry.Parent[Any]) -> str:
    return root.cursor or ""


def _event_moved(root: strawberry.Parent[Any]) -> bool:
    return bool(root.moved)


def build_event_type(type_name: str, data_type: type, description: str | None) -> type:
    """``{name}Event``: what a typed ``{name}Changed`` subscription yields for each change."""
    annotations = {"stream": str, "action": Action, "model": str, "data": data_type}
    cursor = strawberry.field(
        resolver=_event_cursor,
        description="The event's place in its stream: subscribe with after set to it to "
        "resume after this event ('' when the server keeps no history).",
    )
    moved = strawberry.field(
        resolver=_event_moved,
        description="For a subscription with where: true when the object entered the filter "
        "(a CREATE) or left it (a DELETE, with its data now) rather than being created or "
        "deleted; false otherwise.",
    )
    namespace = {"__annotations__": annotations, "cursor": cursor, "moved": moved}
    cls = type(type_name + "Event", (), namespace)
    return strawberry.type(
        cls,
        name=type_name + "Event",
        description=description or f"A committed change on the stream of {type_name}.",
    )
