"""``@model_subscription``: register a DRF ModelSerializer as a stream and generate its types."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeVar, overload

from django.apps import apps
from django.core.exceptions import ValidationError
from django.db import models
from rest_framework import serializers
from rest_framework.permissions import BasePermission

from .conf import get_settings
from .events import check_stream_name, pk_key
from .exceptions import ControlError, RegistrationError
from .permissions import EventFilter, FieldsFor, Rules, event_check
from .types import GRAPHQL_NAME_RE, build_data_type, build_event_type, build_fields_enum

S = TypeVar("S", bound=type[serializers.ModelSerializer])

logger = logging.getLogger(__name__)


class _Bound(threading.local):
    """One thread's serializer of a stream (see :meth:`Registration.serialize`)."""

    serializer: serializers.ModelSerializer | None = None


@dataclass(frozen=True, eq=False)
class Registration:
    """Everything known about one registered serializer (one stream)."""

    serializer_class: type[serializers.ModelSerializer]
    stream: str
    name: str
    description: str | None
    model: type[models.Model]
    #: The serializer's output field names, in order.
    field_names: tuple[str, ...]
    data_type: type
    fields_enum: type
    event_type: type
    rules: Rules = field(default_factory=Rules)

    @cached_property
    def event_check(self) -> Callable[[Any, Any], bool] | None:
        """The per-event, per-user permission check of the stream; None when it has none."""
        return event_check(self)

    @property
    def model_label(self) -> str:
        """``"shop.product"``: the ``model`` of every event of this stream."""
        return self.model._meta.label_lower

    @property
    def field_prefix(self) -> str:
        return self.name[:1].lower() + self.name[1:]

    @property
    def control_field(self) -> str:
        """The GraphQL name of the control operation, e.g. ``productSubscription``."""
        return f"{self.field_prefix}Subscription"

    @property
    def changed_field(self) -> str:
        """The GraphQL name of the typed subscription, e.g. ``productChanged``."""
        return f"{self.field_prefix}Changed"

    def serialize(self, instance: models.Model) -> Any:
        """The representation of ``instance`` every subscriber receives (one call per event).

        There is no request behind a model change: hyperlinked fields render relative URLs.
        Binding a serializer's fields costs about ten times its ``to_representation``, so each
        thread keeps one serializer per stream, its fields bound once, and points its
        ``instance`` at the object before each call; a serializer class that overrides
        ``__init__`` or ``get_fields`` (whose fields may depend on the instance) is built anew for
        every event instead.
        """
        if not self._reusable:
            return self.serializer_class(instance, context={"request": None}).data
        bound: _Bound = self._bound
        serializer = bound.serializer
        if serializer is None:
            serializer = bound.serializer = self.serializer_class(context={"request": None})
        serializer.instance = instance
        try:
            return serializer.to_representation(instance)
        finally:
            serializer.instance = None

    @cached_property
    def _reusable(self) -> bool:
        return not any(
            "__init__" in vars(klass) or "get_fields" in vars(klass)
            for klass in self.serializer_class.__mro__
            if not klass.__module__.startswith("rest_framework.")
            and issubclass(klass, serializers.BaseSerializer)
        )

    @cached_property
    def _bound(self) -> _Bound:
        return _Bound()

    def parse_id(self, value: object) -> str:
        """The key of a client-given id, or ControlError saying why it is no primary key here."""
        pk_field = self.model._meta.pk
        assert pk_field is not None
        try:
            python_value = pk_field.to_python(value)
            if python_value is None:
                raise ValidationError("the id is empty")
        except ValidationError as exc:
            reason = " ".join(str(m) for m in exc.messages)
            raise ControlError(
                f"id {value!r} is not a valid primary key of {self.model_label}: {reason}"
            ) from None
        return pk_key(python_value)


_by_stream: dict[str, Registration] = {}
_by_serializer: dict[type, Registration] = {}
_by_model: dict[type[models.Model], tuple[Registration, ...]] = {}
#: Set once the app's ready() has imported the AUTODISCOVER modules.
_discovered = False
#: Serializers registered after that, by their module (see :func:`late_registrations`).
_late: dict[str, str] = {}


def mark_discovered() -> None:
    """Called by the app's ``ready()`` once the ``AUTODISCOVER`` modules are imported."""
    global _discovered
    _discovered = True


def late_registrations() -> dict[str, str]:
    """``{stream: module}`` of the serializers registered after Django started: processes that
    never import their module (a shell, a Celery worker) send no events for them."""
    return dict(_late)


def registrations() -> tuple[Registration, ...]:
    """Every registration, in the order the serializers were decorated."""
    return tuple(_by_stream.values())


def registration_for_stream(stream: str) -> Registration | None:
    return _by_stream.get(stream)


def registration_for_serializer(serializer_class: type) -> Registration | None:
    return _by_serializer.get(serializer_class)


def registrations_for_model(model: type[models.Model]) -> tuple[Registration, ...]:
    """The streams of a model class (a model may have several serializers)."""
    return _by_model.get(model, ())


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
    existing = _by_stream.get(stream)
    if existing is not None and _identity(existing.serializer_class) != _identity(cls):
        raise RegistrationError(
            f"stream {stream!r} is registered twice: by {_identity(existing.serializer_class)} "
            f"and by {_identity(cls)}; give each serializer its own stream."
        )
    type_name = name if name is not None else re.sub(r"Serializer$", "", cls.__name__)
    if not type_name or not GRAPHQL_NAME_RE.match(type_name):
        raise RegistrationError(
            f"{cls.__name__}: {type_name!r} is not a valid GraphQL type name; pass name=..."
        )
    for other in _by_stream.values():
        if other.name == type_name and other.stream != stream:
            raise RegistrationError(
                f"{_identity(cls)} and {_identity(other.serializer_class)} would both generate "
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

    data_type, field_names = build_data_type(
        cls(),
        type_name,
        f"The fields of {model._meta.label_lower}, as {cls.__name__} renders them.",
        field_types,
    )
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
    )
    if existing is not None:
        _forget(existing)
    _by_stream[stream] = registration
    _by_serializer[cls] = registration
    _by_model[model] = (*_by_model.get(model, ()), registration)
    if _discovered and stream not in _late:
        _late[stream] = cls.__module__
        logger.warning(
            "%s (stream %r) was registered after Django started, when %s was imported: a "
            "process that does not import that module (a shell, a script, a Celery worker) sends "
            "no event for %s, and saves made before the import sent none. Move it to an app's "
            "serializers module, or add %r to STRAWBERRY_MODEL_SUBS['AUTODISCOVER'].",
            _identity(cls),
            stream,
            cls.__module__,
            model._meta.label,
            cls.__module__,
        )

    from .bridge import connect_model

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


def _identity(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _forget(registration: Registration) -> None:
    _late.pop(registration.stream, None)
    _by_stream.pop(registration.stream, None)
    _by_serializer.pop(registration.serializer_class, None)
    rest = tuple(r for r in _by_model.get(registration.model, ()) if r is not registration)
    if rest:
        _by_model[registration.model] = rest
    else:
        _by_model.pop(registration.model, None)


def unregister(stream: str) -> None:
    """Forget a stream (for tests that register serializers of their own)."""
    registration = _by_stream.get(stream)
    if registration is not None:
        _forget(registration)
