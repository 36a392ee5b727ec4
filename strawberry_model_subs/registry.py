"""The registrations: one per decorated serializer (a stream), looked up by stream, serializer
class or model. :mod:`~strawberry_model_subs.decorator` makes them; everything else reads them."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models
from rest_framework import serializers

from .events import pk_key
from .exceptions import ControlError
from .filters import FilterField
from .permissions import Rules, event_check

logger = logging.getLogger(__name__)


class _Bound(threading.local):
    """One thread's serializer of a stream (see :meth:`Registration.serialize`)."""

    serializer: serializers.ModelSerializer[Any] | None = None


@dataclass(frozen=True, eq=False)
class Registration:
    """Everything known about one registered serializer (one stream)."""

    serializer_class: type[serializers.ModelSerializer[Any]]
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
    #: ``{name}Filter`` (None: the serializer has no filterable field) and its fields.
    filter_type: type | None = None
    filter_fields: Mapping[str, FilterField] = field(default_factory=dict)

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
        """``name`` with its first letter lowercased: the start of the stream's field names."""
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
    """The registration of ``stream``, or None when no serializer is registered under it."""
    return _by_stream.get(stream)


def registration_for_serializer(serializer_class: type) -> Registration | None:
    """The registration of a decorated serializer class, or None: a subclass of one has none."""
    return _by_serializer.get(serializer_class)


def registrations_for_model(model: type[models.Model]) -> tuple[Registration, ...]:
    """The streams of a model class (a model may have several serializers)."""
    return _by_model.get(model, ())


def identity(cls: type) -> str:
    """``module.QualName`` of a serializer class, as errors and logs name it."""
    return f"{cls.__module__}.{cls.__qualname__}"


def add(registration: Registration) -> Registration:
    """Store ``registration``, replacing the stream's earlier one (a module imported again).

    A registration made after Django started (see :func:`mark_discovered`) is logged: processes
    that never import its module send no events for it.
    """
    stream = registration.stream
    existing = _by_stream.get(stream)
    if existing is not None:
        _forget(existing)
    cls, model = registration.serializer_class, registration.model
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
            identity(cls),
            stream,
            cls.__module__,
            model._meta.label,
            cls.__module__,
        )
    return registration


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
