"""``@model_subscription``: a DRF ``ModelSerializer`` becomes a stream, its GraphQL types, and
the signal receivers that turn its model's changes into events.

The decorator checks what it is given (a :class:`~strawberry_model_subs.exceptions.
RegistrationError` names the serializer and what to change), builds the types
(:mod:`~strawberry_model_subs.typegen`), stores the registration
(:mod:`~strawberry_model_subs.registry`), then connects the model's receivers
(:mod:`~strawberry_model_subs.bridge`), in that order.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar, overload

from django.apps import apps
from rest_framework import serializers
from rest_framework.permissions import BasePermission

from . import registry
from .bridge import connect_model
from .conf import get_settings
from .events import check_stream_name
from .exceptions import RegistrationError
from .filters import build_filter_type, filter_fields
from .permissions import EventFilter, FieldsFor, Rules
from .registry import Registration, identity
from .typegen import (
    GRAPHQL_NAME_RE,
    Mapped,
    build_data_type,
    build_event_type,
    build_fields_enum,
)

S = TypeVar("S", bound=type[serializers.ModelSerializer[Any]])


def _data_type_of(serializer_class: type) -> type | None:
    """The ``Data`` type of a decorated serializer: what a nested one of it is typed as."""
    registration = registry.registration_for_serializer(serializer_class)
    return None if registration is None else registration.data_type


@overload
def model_subscription(
    serializer_class: S,
    *,
    stream: str,
    description: str | None = ...,
    name: str | None = ...,
    field_types: Mapping[str, Any] | None = ...,
    permission_classes: Sequence[type[BasePermission]] = ...,
    event_filter: EventFilter | None = ...,
    fields_for: FieldsFor | None = ...,
) -> S: ...
@overload
def model_subscription(
    serializer_class: None = ...,
    *,
    stream: str,
    description: str | None = ...,
    name: str | None = ...,
    field_types: Mapping[str, Any] | None = ...,
    permission_classes: Sequence[type[BasePermission]] = ...,
    event_filter: EventFilter | None = ...,
    fields_for: FieldsFor | None = ...,
) -> Callable[[S], S]: ...
def model_subscription(
    serializer_class: S | None = None,
    *,
    stream: str,
    description: str | None = None,
    name: str | None = None,
    field_types: Mapping[str, Any] | None = None,
    permission_classes: Sequence[type[BasePermission]] = (),
    event_filter: EventFilter | None = None,
    fields_for: FieldsFor | None = None,
) -> S | Callable[[S], S]:
    """Register a DRF ``ModelSerializer`` as the stream ``stream`` and return it unchanged.

    Every committed create, update and delete of the serializer's model is then serialized once by
    it and pushed to the websocket clients subscribed to ``stream``. The GraphQL names come from
    ``name`` (default: the class name less ``Serializer``): ``{name}Data``, ``{name}Fields``,
    ``{name}Event``, and the subscription fields ``{name}Subscription`` and ``{name}Changed`` that
    :func:`~strawberry_model_subs.subscription_type` adds to the schema.

    Example::

        @model_subscription(stream="products", description="Product Subscription")
        class ProductSerializer(serializers.ModelSerializer):
            class Meta:
                model = Product
                fields = "__all__"

    Args:
        serializer_class: The serializer, when called as ``model_subscription(Serializer,
            stream=...)``; omitted as ``@model_subscription(...)``, which returns the decorator.
        stream: The stream's name, unique in the project; a valid Channels group name part.
        description: Describes the generated subscription fields and event type.
        name: The GraphQL type name prefix.
        field_types: ``{"field_name": type}`` for fields the built-in mapping cannot type
            (the type is any Strawberry type or scalar; the field is made nullable).
        permission_classes: DRF permission classes; ``has_permission`` is asked when a
            subscription is made, ``has_object_permission`` for every event (see
            :mod:`strawberry_model_subs.permissions`).
        event_filter: ``(user, data) -> bool``, asked for every event and subscriber.
        fields_for: ``(user) -> field names | None``, the fields a user may receive.

    Raises:
        RegistrationError: at decoration time, naming the serializer and what to change.
    """
    rules = Rules(tuple(permission_classes), event_filter, fields_for)

    def register(cls: S) -> S:
        _register(cls, stream, description, name, field_types or {}, rules)
        return cls

    return register(serializer_class) if serializer_class is not None else register


def _register(
    cls: type,
    stream: str,
    description: str | None,
    name: str | None,
    field_types: Mapping[str, Any],
    rules: Rules,
) -> Registration:
    if not (isinstance(cls, type) and issubclass(cls, serializers.ModelSerializer)):
        raise RegistrationError(
            f"@model_subscription decorates a rest_framework ModelSerializer subclass, not {cls!r}."
        )
    check_stream_name(stream, get_settings().GROUP_PREFIX)
    existing = registry.registration_for_stream(stream)
    if existing is not None and identity(existing.serializer_class) != identity(cls):
        raise RegistrationError(
            f"stream {stream!r} is registered twice: by {identity(existing.serializer_class)} "
            f"and by {identity(cls)}; give each serializer its own stream."
        )
    type_name = name if name is not None else re.sub(r"Serializer$", "", cls.__name__)
    if not type_name or not GRAPHQL_NAME_RE.match(type_name):
        raise RegistrationError(
            f"{cls.__name__}: {type_name!r} is not a valid GraphQL type name; pass name=..."
        )
    for other in registry.registrations():
        if other.name == type_name and other.stream != stream:
            raise RegistrationError(
                f"{identity(cls)} and {identity(other.serializer_class)} would both generate "
                f"the GraphQL types {type_name}Data/Event/Fields; pass name=... to one of them."
            )
    meta = getattr(cls, "Meta", None)
    model = getattr(meta, "model", None)
    if model is None:
        raise RegistrationError(f"{cls.__name__} has no Meta.model.")
    if not apps.models_ready:
        raise RegistrationError(
            f"{cls.__name__} was decorated before Django's apps were loaded; import serializers "
            "from views, URLs or the schema, not from models.py or an AppConfig module."
        )

    serializer = cls()
    mapped: dict[str, Mapped] = {}
    data_type, field_names = build_data_type(
        serializer,
        type_name,
        f"The fields of {model._meta.label_lower}, as {cls.__name__} renders them.",
        field_types,
        known=_data_type_of,
        mapped_out=mapped,
    )
    filterable = filter_fields(serializer, model, mapped)
    registration = Registration(
        serializer_class=cls,
        stream=stream,
        name=type_name,
        description=description,
        model=model,
        field_names=field_names,
        data_type=data_type,
        fields_enum=build_fields_enum(type_name, field_names),
        event_type=build_event_type(type_name, data_type, description),
        rules=_check_rules(cls, rules),
        filter_type=build_filter_type(type_name, filterable),
        filter_fields=filterable,
    )
    registry.add(registration)
    connect_model(model)
    return registration


def _check_rules(cls: type, rules: Rules) -> Rules:
    for permission in rules.permission_classes:
        if not (isinstance(permission, type) and issubclass(permission, BasePermission)):
            raise RegistrationError(
                f"{cls.__name__}: permission_classes takes rest_framework BasePermission "
                f"subclasses, not {permission!r}."
            )
    for name, hook in (("event_filter", rules.event_filter), ("fields_for", rules.fields_for)):
        if hook is not None and not callable(hook):
            raise RegistrationError(f"{cls.__name__}: {name} must be callable, not {hook!r}.")
    return rules
