"""Model signals to channel-layer events: the library's only writer.

``post_save`` and ``post_delete`` receivers are connected for each registered model (with the
model as sender, so other models keep Django's fast deletes). A save is serialized inside
``transaction.on_commit``, so the event carries the committed state (many-to-many changes made
later in the same transaction included) and a rolled-back transaction costs nothing. A delete is
serialized when it happens, while the object and its primary key still exist, and sent on commit.
Either way the representation is computed once per event and stream, and sent once per stream to
the group of the processes that have subscribers.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from typing import Any

from asgiref.sync import sync_to_async
from django.db import models, transaction
from django.db.models.signals import post_delete, post_save

from .conf import get_settings
from .events import CHANGE_ACTIONS, Action, EventMessage, event_message, group_name
from .layers import apublish, in_event_loop, publish
from .registry import Registration, registrations_for_model

logger = logging.getLogger(__name__)


def connect_model(model: type[models.Model]) -> None:
    """Connect the receivers for ``model`` (idempotent; done when a serializer is registered)."""
    uid = f"strawberry_model_subs:{model._meta.label_lower}"
    post_save.connect(_on_save, sender=model, weak=False, dispatch_uid=uid)
    post_delete.connect(_on_delete, sender=model, weak=False, dispatch_uid=uid)


def _on_save(
    sender: type[models.Model],
    instance: models.Model,
    created: bool = False,
    raw: bool = False,
    using: str | None = None,
    **kwargs: Any,
) -> None:
    if raw:  # loaddata: fixtures are data being restored, not changes to announce
        return
    action = Action.CREATE if created else Action.UPDATE
    pk = instance.pk
    for registration in registrations_for_model(sender):
        transaction.on_commit(
            _callback(_publish_saved, registration, instance, pk, action), using=using
        )


def _on_delete(
    sender: type[models.Model], instance: models.Model, using: str | None = None, **kwargs: Any
) -> None:
    for registration in registrations_for_model(sender):
        message = _message(registration, instance, instance.pk, Action.DELETE)
        if message is not None:
            transaction.on_commit(_callback(_send, message), using=using)


def _publish_saved(
    registration: Registration, instance: models.Model, pk: Any, action: Action
) -> None:
    if instance.pk is None:
        # Deleted later in the same transaction: Django has cleared the primary key.
        instance = copy.copy(instance)
        instance.pk = pk
    message = _message(registration, instance, pk, action)
    if message is not None:
        _send(message)


def _message(
    registration: Registration, instance: models.Model, pk: Any, action: Action
) -> EventMessage | None:
    try:
        data = registration.serialize(instance)
    except Exception:
        logger.exception(
            "%s could not serialize %s pk=%r for a %s event on stream %r; no event was sent",
            registration.serializer_class.__name__,
            registration.model_label,
            pk,
            action.value,
            registration.stream,
        )
        return None
    return event_message(registration.stream, action, registration.model_label, pk, data)


def _callback(func: Callable[..., None], *args: Any) -> Callable[[], None]:
    """An on_commit callback that never raises into the committing code: the data is committed
    whatever happens to its event, and a failure is logged as a lost event."""

    def run() -> None:
        try:
            func(*args)
        except Exception as exc:
            logger.error("could not publish an event after commit, it is lost: %r", exc)

    return run


def _send(message: EventMessage) -> None:
    publish(group_name(get_settings().GROUP_PREFIX, message["stream"]), dict(message))


async def _asend(message: EventMessage) -> None:
    await apublish(group_name(get_settings().GROUP_PREFIX, message["stream"]), dict(message))


def _check_action(instance: models.Model, action: Action | str) -> tuple[Action, tuple[Any, ...]]:
    action = Action(action)
    if action not in CHANGE_ACTIONS:
        raise ValueError(f"notify() takes create, update or delete, not {action.value}")
    registrations = registrations_for_model(type(instance))
    if not registrations:
        raise ValueError(
            f"{type(instance).__name__} has no serializer registered with @model_subscription"
        )
    if instance.pk is None:
        raise ValueError(f"cannot notify about a {type(instance).__name__} without a primary key")
    return action, registrations


def notify(instance: models.Model, action: Action | str) -> None:
    """Send an event for ``instance`` by hand, on every stream of its model.

    For changes the signals do not see: ``QuerySet.update()``, ``bulk_create()``, raw SQL or
    another program. Inside a transaction the event is sent when it commits, and never if it rolls
    back. Call it from synchronous code; from async code use :func:`anotify`.

    Example::

        Product.objects.filter(pk=5).update(price=10)
        notify(Product.objects.get(pk=5), Action.UPDATE)
    """
    if in_event_loop():
        raise RuntimeError("notify() is for synchronous code; in async code, await anotify()")
    action, registrations = _check_action(instance, action)
    for registration in registrations:
        message = _message(registration, instance, instance.pk, action)
        if message is not None:
            transaction.on_commit(_callback(_send, message))


async def anotify(instance: models.Model, action: Action | str) -> None:
    """Async :func:`notify`: serializes in a worker thread and sends without blocking the loop."""
    action, registrations = _check_action(instance, action)
    for registration in registrations:
        message = await sync_to_async(_message)(registration, instance, instance.pk, action)
        if message is not None:
            await _asend(message)
