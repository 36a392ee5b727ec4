"""``where`` filters: the ``{Name}Filter`` input generated from a serializer, and what a filter
compiles to.

A filter has one field per serializer field backed by one concrete model field (a foreign key by
its id), each taking strawberry-django's lookup inputs, so a filter reads as it does on a
strawberry-django query, plus ``AND``, ``OR`` and ``NOT``:

=====================================  ==========================================================
serializer field                       lookups
=====================================  ==========================================================
text (``CharField``, ``EmailField``)   ``exact``, ``iExact``, ``inList``, ``isNull``,
                                       ``contains``, ``iContains``, ``startsWith``,
                                       ``iStartsWith``, ``endsWith``, ``iEndsWith``
numbers, dates, times                  ``exact``, ``inList``, ``isNull``, ``gt``, ``gte``,
                                       ``lt``, ``lte``, ``range: {start, end}``
booleans, choices (an enum), UUIDs,    ``exact``, ``inList``, ``isNull``
foreign keys (their id)
=====================================  ==========================================================

The lookups of one filter object hold together (AND), ``AND`` and ``NOT`` add to them, and
``OR`` is the alternative to all of that, as strawberry-django and Django's ``Q`` combine them.
A null lookup value is no lookup; a null field value matches only ``isNull: true`` (and
``NOT``), as in SQL.

:func:`compile_where` turns a filter input into a :class:`Where`: hashable, so equal filters are
one, and tested against an event's data (the serializer's representation) once per event for
all its subscribers. Regular expressions (``regex``, ``iRegex``) are refused: a pattern would run
on the server for every event.
"""

from __future__ import annotations

import datetime
import decimal
import enum
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Optional

import strawberry
from django.conf import settings
from django.db import models
from django.utils import timezone
from rest_framework import serializers
from strawberry.types.base import has_object_definition
from strawberry.types.unset import UNSET
from strawberry.utils.str_converters import to_camel_case
from strawberry_django.fields.filter_types import (
    BaseFilterLookup,
    ComparisonFilterLookup,
    StrFilterLookup,
)

from .events import encode_data
from .exceptions import FilterError
from .scalars import BigInt
from .typegen import AnyField, Mapped, _source_path

#: Model fields whose representation does not compare as their values do (base64 bytes, a
#: duration's "1 02:00:00"): not filterable.
UNFILTERABLE = (models.BinaryField, models.DurationField)

#: A represented value (JSON-ready) -> the value lookups compare.
Convert = Callable[[Any], Any]


@dataclass(frozen=True)
class FilterField:
    """One field of a ``{Name}Filter``: the serializer field it reads, how a represented value
    is compared, its lookup input type, and the model attribute behind it with how the
    serializer represents a value of it (for the values before an update)."""

    name: str
    convert: Convert
    lookup_type: Any
    attname: str = ""
    represent: Convert = lambda value: value  # as it is


def _same(value: Any) -> Any:
    return value


def _decimal(value: Any) -> Any:
    return decimal.Decimal(str(value))


def _uuid(value: Any) -> Any:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def _id(value: Any) -> Any:
    return str(value)


def _temporal(mapped: Mapped) -> Convert:
    """Dates and times parsed from ISO text; a naive datetime is taken in the current time zone
    (as Django takes one in a query) when USE_TZ is on, so it compares with aware ones."""
    parse = mapped.convert
    assert parse is not None
    if mapped.annotation is not datetime.datetime:
        return parse

    def convert(value: Any) -> Any:
        parsed = parse(value)
        if settings.USE_TZ and timezone.is_naive(parsed):
            return timezone.make_aware(parsed)
        return parsed

    return convert


#: The GraphQL type of a mapped field -> (its lookup input type, how a value is compared).
#: Choice enums, which typegen makes per field, are added by :func:`filter_fields`.
LOOKUPS: dict[Any, tuple[Any, Convert | None]] = {
    str: (StrFilterLookup, _same),
    bool: (BaseFilterLookup[bool], _same),
    int: (ComparisonFilterLookup[int], int),
    BigInt: (ComparisonFilterLookup[BigInt], int),  # type: ignore[valid-type]
    float: (ComparisonFilterLookup[float], float),
    decimal.Decimal: (ComparisonFilterLookup[decimal.Decimal], _decimal),
    datetime.datetime: (ComparisonFilterLookup[datetime.datetime], None),
    datetime.date: (ComparisonFilterLookup[datetime.date], None),
    datetime.time: (ComparisonFilterLookup[datetime.time], None),
    uuid.UUID: (BaseFilterLookup[uuid.UUID], _uuid),
    strawberry.ID: (BaseFilterLookup[strawberry.ID], _id),
}


def filter_fields(
    serializer: serializers.Serializer[Any],
    model: type[models.Model],
    mapped: Mapping[str, Mapped],
) -> dict[str, FilterField]:
    """The filterable fields of a serializer, by name: those whose source is one concrete,
    non-many-to-many field of ``model`` and whose GraphQL type has lookups (``mapped``: the
    types ``typegen.build_data_type`` gave them)."""
    found: dict[str, FilterField] = {}
    for name, serializer_field in serializer.fields.items():
        if serializer_field.write_only or name not in mapped:
            continue
        if not _backed_by_a_column(serializer_field, model):
            continue
        entry = mapped[name]
        annotation = entry.annotation
        attname, represent = _column(serializer_field, model)
        if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
            lookup_type: Any = BaseFilterLookup[annotation]  # type: ignore[valid-type]
            found[name] = FilterField(name, _same, lookup_type, attname, represent)
            continue
        lookup = LOOKUPS.get(annotation)
        if lookup is None:
            continue
        lookup_type, convert = lookup
        if convert is None:
            if entry.convert is None:  # a date rendered in a custom format: a String
                continue
            convert = _temporal(entry)
        found[name] = FilterField(name, convert, lookup_type, attname, represent)
    return found


def _column(serializer_field: AnyField, model: type[models.Model]) -> tuple[str, Convert]:
    """The model attribute behind a column-backed field (a foreign key's ``<name>_id``), and
    how the serializer represents a value of that attribute (JSON-ready)."""
    source = getattr(serializer_field, "source", None) or ""
    path = _source_path(model, source)
    assert path is not None
    model_field = path[0]
    attname = getattr(model_field, "attname", source)
    if getattr(model_field, "is_relation", False) and attname != source:
        return attname, _same  # a foreign key: its id, as PrimaryKeyRelatedField gives it

    def represent(value: Any) -> Any:
        # As the event's data is: the serializer's value, through the same JSON encoding.
        if value is None:
            return None
        return json.loads(encode_data(serializer_field.to_representation(value)))

    return attname, represent


def _backed_by_a_column(serializer_field: AnyField, model: type[models.Model]) -> bool:
    source = getattr(serializer_field, "source", None) or ""
    if "." in source:
        return False
    path = _source_path(model, source)
    if path is None or len(path) != 1:
        return False
    model_field = path[0]
    if isinstance(model_field, UNFILTERABLE):
        return False
    return bool(getattr(model_field, "concrete", False)) and not model_field.many_to_many


def build_filter_type(type_name: str, fields: Mapping[str, FilterField]) -> type | None:
    """``{name}Filter``, or None when the serializer has no filterable field."""
    if not fields:
        return None
    name = f"{type_name}Filter"
    cls: Any = type(name, (), {"__annotations__": {}})
    annotations = cls.__annotations__
    for field_name, filter_field in fields.items():
        annotations[field_name] = Optional[filter_field.lookup_type]  # noqa: UP045
        setattr(cls, field_name, UNSET)
    for combinator in ("AND", "OR", "NOT"):
        annotations[combinator] = Optional[cls]  # noqa: UP045
        setattr(cls, combinator, strawberry.field(name=combinator, default=UNSET))
    filter_type: type = strawberry.input(
        cls,
        name=name,
        description=f"Which {type_name} objects a subscription receives: the lookups of each "
        "field (as strawberry-django's), combined with AND, OR and NOT.",
    )
    return filter_type


# -- compiled filters ----------------------------------------------------------------------------

Test = Callable[[Mapping[str, Any]], bool]


@dataclass(frozen=True)
class Where:
    """A compiled filter. Equal filters compare (and hash) equal, whatever their source's
    order, so a hub tests each distinct one once per event.

    Example::

        where = compile_where({"price": {"lt": "10"}}, registration.filter_fields)
        where.matches({"id": 1, "price": "9.50"})  # True
    """

    key: tuple[Any, ...]
    #: The serializer fields it reads.
    fields: frozenset[str]
    test: Test = field(compare=False, repr=False)
    #: A field and the values one of which it must have to match (an ``exact`` or ``inList``
    #: lookup that must hold), compared as that field's ``convert`` gives them: how a hub finds
    #: the filters an event may concern without testing them all. None: no such field.
    index: tuple[str, frozenset[Any]] | None = field(default=None, compare=False, repr=False)

    def matches(self, data: Mapping[str, Any]) -> bool:
        """Whether an object with this representation matches."""
        return self.test(data)


def _set_fields(value: Any) -> dict[str, Any]:
    """The set fields of an input object: its non-null, non-UNSET fields, by Python name."""
    out = {}
    for f in value.__strawberry_definition__.fields:
        item = getattr(value, f.python_name)
        if item is UNSET or item is None:
            continue
        out[f.python_name] = item
    return out


def _to_json(value: Any) -> Any:
    """A lookup value in JSON form, as a field's ``convert`` reads it back: an enum member's
    value; dates, times, decimals and UUIDs as text; a naive datetime made aware in the current
    time zone first (as Django does for queries) when USE_TZ is on."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime.datetime) and settings.USE_TZ and timezone.is_naive(value):
        value = timezone.make_aware(value)
    if isinstance(value, (datetime.date, datetime.time)):  # datetime is a date
        return value.isoformat()
    if isinstance(value, (decimal.Decimal, uuid.UUID)):
        return str(value)
    return value


def where_spec(value: Any) -> dict[str, Any]:
    """A ``{Name}Filter`` input (as Strawberry gives it to a resolver) as plain JSON data, which
    a control request carries to the socket's process: ``{"price": {"lt": "10"}, "OR": {...}}``,
    by Python names."""
    if not has_object_definition(value):
        raise FilterError(f"where must be a filter input object, not {value!r}")
    spec: dict[str, Any] = {}
    for name, item in _set_fields(value).items():
        if name in ("AND", "OR", "NOT"):
            spec[name] = where_spec(item)
            continue
        lookups: dict[str, Any] = {}
        for lookup, operand in _set_fields(item).items():
            if lookup == "in_list":
                lookups[lookup] = [_to_json(v) for v in operand]
            elif lookup == "range":
                bounds = (operand.start, operand.end)
                lookups[lookup] = [None if b is UNSET else _to_json(b) for b in bounds]
            else:
                lookups[lookup] = _to_json(operand)
        spec[name] = lookups
    return spec


def _fold(value: Any) -> Any:
    return value.casefold() if isinstance(value, str) else value


def _compare(lookup: str, operand: Any) -> Callable[[Any], bool] | None:
    """The test of one lookup on a non-null value; None for a lookup it does not know."""
    if lookup == "exact":
        return lambda v: v == operand
    if lookup == "in_list":
        members = frozenset(operand)
        return lambda v: v in members
    if lookup == "gt":
        return lambda v: v > operand
    if lookup == "gte":
        return lambda v: v >= operand
    if lookup == "lt":
        return lambda v: v < operand
    if lookup == "lte":
        return lambda v: v <= operand
    if lookup == "range":
        start, end = operand
        return lambda v: (start is None or v >= start) and (end is None or v <= end)
    if lookup == "i_exact":
        folded = _fold(operand)
        return lambda v: _fold(v) == folded
    if lookup == "contains":
        return lambda v: operand in v
    if lookup == "i_contains":
        folded = _fold(operand)
        return lambda v: folded in _fold(v)
    if lookup == "starts_with":
        return lambda v: v.startswith(operand)
    if lookup == "i_starts_with":
        folded = _fold(operand)
        return lambda v: _fold(v).startswith(folded)
    if lookup == "ends_with":
        return lambda v: v.endswith(operand)
    if lookup == "i_ends_with":
        folded = _fold(operand)
        return lambda v: _fold(v).endswith(folded)
    return None


_REFUSED = {"regex", "i_regex"}


def _field_test(filter_field: FilterField, lookups: Mapping[str, Any]) -> tuple[Any, Test]:
    name, convert = filter_field.name, filter_field.convert
    keys: list[tuple[str, Any]] = []
    tests: list[Callable[[Any], bool]] = []
    is_null: bool | None = None
    for lookup, raw in sorted(lookups.items()):
        where = f"{to_camel_case(name)}.{to_camel_case(lookup)}"
        if lookup in _REFUSED:
            raise FilterError(
                f"where: {where} is not supported: a regular expression would run on the "
                "server for every event; use contains, startsWith or endsWith"
            )
        try:
            if lookup == "is_null":
                is_null = bool(raw)
                keys.append((lookup, is_null))
                continue
            if lookup == "in_list":
                if any(v is None for v in raw):
                    raise FilterError(f"where: {where} holds null; use isNull to match null")
                operand: Any = frozenset(convert(v) for v in raw)
            elif lookup == "range":
                start, end = raw
                operand = (
                    None if start is None else convert(start),
                    None if end is None else convert(end),
                )
            else:
                operand = convert(raw)
        except (TypeError, ValueError, ArithmeticError) as exc:
            raise FilterError(f"where: {where}: {raw!r} is not a value of the field") from exc
        compare = _compare(lookup, operand)
        if compare is None:
            raise FilterError(f"where: {where} is not a lookup subscription filters support")
        keys.append((lookup, operand))
        tests.append(compare)

    def test(data: Mapping[str, Any]) -> bool:
        value = data.get(name)
        if value is None:
            return is_null is True
        if is_null is True:
            return False
        try:
            value = convert(value)
            return all(t(value) for t in tests)
        except (TypeError, ValueError, ArithmeticError):  # data of another type: no match
            return False

    return (name, tuple(keys)), test


def compile_where(spec: Mapping[str, Any], fields: Mapping[str, FilterField]) -> Where:
    """Compile a filter (as :func:`where_spec` gives it) into a :class:`Where`.

    Raises:
        FilterError: a lookup the filter cannot run (the message names the field).
    """
    parts: list[Any] = []
    tests: list[Test] = []
    read: set[str] = set()
    for name in sorted(k for k in spec if k not in ("AND", "OR", "NOT")):
        filter_field = fields.get(name)
        lookups = spec[name]
        if filter_field is None or not isinstance(lookups, Mapping):
            raise FilterError(f"where: {to_camel_case(name)!r} is not a filterable field")
        part, field_test = _field_test(filter_field, lookups)
        parts.append(part)
        tests.append(field_test)
        read.add(filter_field.name)
    both = compile_where(spec["AND"], fields) if "AND" in spec else None
    negated = compile_where(spec["NOT"], fields) if "NOT" in spec else None
    alternative = compile_where(spec["OR"], fields) if "OR" in spec else None
    for sub in (both, negated, alternative):
        if sub is not None:
            read |= sub.fields
    key = (
        tuple(parts),
        None if both is None else both.key,
        None if negated is None else negated.key,
        None if alternative is None else alternative.key,
    )

    def test(data: Mapping[str, Any]) -> bool:
        matched = all(t(data) for t in tests)
        if matched and both is not None:
            matched = both.test(data)
        if matched and negated is not None:
            matched = not negated.test(data)
        if not matched and alternative is not None:
            matched = alternative.test(data)
        return matched

    index = None if alternative is not None else _index_of(parts)
    if index is None and alternative is None and both is not None:
        index = both.index  # AND's own necessary value holds for the whole
    return Where(key, frozenset(read), test, index)


def _index_of(parts: list[Any]) -> tuple[str, frozenset[Any]] | None:
    """The first field whose ``exact``/``inList`` lookups must hold, and its allowed values."""
    for name, lookups in parts:
        allowed: frozenset[Any] | None = None
        for lookup, operand in lookups:
            values = frozenset([operand]) if lookup == "exact" else operand
            if lookup in ("exact", "in_list"):
                allowed = values if allowed is None else allowed & values
        if allowed is not None:
            return name, allowed
    return None
