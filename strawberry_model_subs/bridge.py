"""Model signals to recorded changes: every kind of ORM write of a registered model.

For each registered model the receivers are connected with the model (or the through model) as
sender, so other models keep Django's fast paths:

* ``post_save``: a ``create`` or an ``update`` of the object;
* ``pre_delete``: a ``delete``, serialized while the object and its many-to-many rows still
  exist, so the event shows the object as it was;
* ``m2m_changed`` on every many-to-many relation the serializer renders (by a field's
  ``source``, from either side; a field whose source is ``"*"`` renders them all): an ``update``
  of each registered object on either side whose representation the change alters;
* ``pre_delete`` of the model on the other side of such a relation: an ``update`` of the
  registered objects that lose it (Django removes those rows without ``m2m_changed``).

The changes go to :mod:`~strawberry_model_subs.capture`, which holds them until the transaction
commits and coalesces them; the publisher then reads each object back and sends the events.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from typing import Any

from asgiref.sync import sync_to_async
from django.db import models
from django.db.models.signals import m2m_changed, post_init, post_save, pre_delete, pre_save

from .capture import Change, record, saved, serialize, touch
from .events import CHANGE_ACTIONS, Action
from .exceptions import InvalidNotifyError, NotRegisteredError, SyncOnlyError
from .layers import in_event_loop
from .registry import Registration, registrations, registrations_for_model

logger = logging.getLogger(__name__)

_UID = "strawberry_model_subs"


def connect_model(model: type[models.Model]) -> None:
    """Connect the receivers for ``model`` and its rendered many-to-many relations
    (idempotent; done when a serializer is registered)."""
    label = model._meta.label_lower
    _columns.pop(model, None)
    if _filter_columns(model):
        post_init.connect(_on_init, sender=model, weak=False, dispatch_uid=f"{_UID}:{label}")
    pre_save.connect(_on_pre_save, sender=model, weak=False, dispatch_uid=f"{_UID}:{label}")
    post_save.connect(_on_save, sender=model, weak=False, dispatch_uid=f"{_UID}:{label}")
    pre_delete.connect(_on_delete, sender=model, weak=False, dispatch_uid=f"{_UID}:{label}")
    for registration in registrations_for_model(model):
        for relation in m2m_relations(registration):
            through = relation.through
            m2m_changed.connect(
                _on_m2m_changed,
                sender=through,
                weak=False,
                dispatch_uid=f"{_UID}:m2m:{through._meta.label_lower}",
            )
            other = relation.other
            pre_delete.connect(
                _on_related_delete,
                sender=other,
                weak=False,
                dispatch_uid=f"{_UID}:related:{other._meta.label_lower}",
            )


class Relation:
    """A many-to-many relation a registration renders: its through model, the model on the
    other side, and the query name that filters the registered model by the other side."""

    __slots__ = ("other", "query_name", "through")

    def __init__(self, through: Any, other: Any, query_name: str) -> None:
        self.through = through
        self.other = other
        self.query_name = query_name


def m2m_relations(registration: Registration) -> list[Relation]:
    """The many-to-many relations whose changes alter ``registration``'s representation."""
    cached = _relations.get(registration)
    if cached is not None:
        return cached
    serializer = registration.serializer_class(context={"request": None})
    sources = {(field.source or "").split(".")[0] for field in serializer.fields.values()}
    everything = "*" in sources
    model = registration.model
    found: list[Relation] = []
    for field in model._meta.get_fields(include_hidden=True):
        if isinstance(field, models.ManyToManyRel):  # the reverse side
            name = field.get_accessor_name()
            if not (everything or name in sources):
                continue
            found.append(
                Relation(field.through, field.related_model, field.field.related_query_name())
            )
        elif isinstance(field, models.ManyToManyField):
            if not (everything or field.name in sources):
                continue
            found.append(Relation(field.remote_field.through, field.related_model, field.name))
    _relations[registration] = found
    return found


_relations: dict[Registration, list[Relation]] = {}


#: The instance attribute holding its filterable columns' values as it was loaded or last
#: saved: what an update changed of them, without a query (see ``hub.seen_as``).
LOADED = "_strawberry_model_subs_loaded"
#: model -> the attributes of the columns its streams' filters read.
_columns: dict[type[models.Model], tuple[str, ...]] = {}


def _filter_columns(model: type[models.Model]) -> tuple[str, ...]:
    columns = _columns.get(model)
    if columns is None:
        found = {
            f.attname
            for r in registrations_for_model(model)
            for f in r.filter_fields.values()
            if f.attname
        }
        columns = _columns[model] = tuple(sorted(found))
    return columns


def _remember(instance: models.Model, columns: tuple[str, ...]) -> None:
    # The instance's __dict__ only: reading a deferred field would query the database.
    values = instance.__dict__
    values[LOADED] = {name: values[name] for name in columns if name in values}


def _on_init(sender: type[models.Model], instance: models.Model, **kwargs: Any) -> None:
    _remember(instance, _filter_columns(sender))


def _before(registration: Registration, instance: models.Model) -> dict[str, Any] | None:
    """What an update changed of the filterable fields: their values before it, as the
    serializer represents them (None: nothing, or not known)."""
    loaded = instance.__dict__.get(LOADED)
    if not loaded:
        return None
    values = instance.__dict__
    before = {}
    for f in registration.filter_fields.values():
        name = f.attname
        if name in loaded and name in values and loaded[name] != values[name]:
            try:
                before[f.name] = f.represent(loaded[name])
            except Exception:  # a value the field cannot represent: taken as unknown
                continue
    return before or None


def _on_pre_save(sender: type[models.Model], instance: models.Model, **kwargs: Any) -> None:
    touch(sender, instance.pk)


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
    began = saved(sender, pk)
    writer = threading.get_ident()
    update = action is Action.UPDATE
    changes = [
        Change(
            r,
            pk,
            action,
            instance=instance,
            began=began,
            writer=writer,
            before=_before(r, instance) if update else None,
        )
        for r in registrations_for_model(sender)
    ]
    columns = _filter_columns(sender)
    if columns:
        _remember(instance, columns)  # the next save compares with this one
    record(using, changes)


def _on_delete(
    sender: type[models.Model], instance: models.Model, using: str | None = None, **kwargs: Any
) -> None:
    changes = [_snapshot(r, instance) for r in registrations_for_model(sender)]
    record(using, [c for c in changes if c is not None])


def _snapshot(registration: Registration, instance: models.Model) -> Change | None:
    """A delete carrying the object as it is now (relations included)."""
    data = serialize(registration, instance, Action.DELETE)
    return None if data is None else Change(registration, instance.pk, Action.DELETE, data)


def _on_m2m_changed(
    sender: Any,
    instance: models.Model,
    action: str,
    model: type[models.Model],
    pk_set: set[Any] | None,
    using: str | None = None,
    **kwargs: Any,
) -> None:
    if action == "pre_clear":
        # post_clear does not say which objects lost the relation: ask while the rows exist.
        if any(_affected(reg, sender) for reg in registrations_for_model(model)):
            accessor = _accessor(type(instance), sender)
            if accessor is not None:
                pks = set(getattr(instance, accessor).values_list("pk", flat=True))
                instance.__dict__.setdefault("_sms_cleared", {})[sender] = pks
        return
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    if action == "post_clear":
        pk_set = instance.__dict__.get("_sms_cleared", {}).pop(sender, None)
    elif not pk_set:
        return  # nothing was added or removed
    changes: list[Change] = []
    for registration in registrations_for_model(type(instance)):
        if _affected(registration, sender):
            changes.append(Change(registration, instance.pk, Action.UPDATE))
    if pk_set:
        for registration in registrations_for_model(model):
            if _affected(registration, sender):
                changes.extend(Change(registration, pk, Action.UPDATE) for pk in pk_set)
    record(using, changes)


def _affected(registration: Registration, through: Any) -> list[Relation]:
    return [r for r in m2m_relations(registration) if r.through is through]


def _accessor(model: type[models.Model], through: Any) -> str | None:
    """The attribute of ``model`` instances that manages the relation through ``through``."""
    for field in model._meta.get_fields(include_hidden=True):
        if isinstance(field, models.ManyToManyRel):
            if field.through is through:
                return field.get_accessor_name()
        elif isinstance(field, models.ManyToManyField) and field.remote_field.through is through:
            return field.name
    return None


def _on_related_delete(
    sender: type[models.Model], instance: models.Model, using: str | None = None, **kwargs: Any
) -> None:
    changes: list[Change] = []
    for registration in registrations():
        for relation in m2m_relations(registration):
            if relation.other is not sender:
                continue
            pks = registration.model._base_manager.using(using).filter(
                **{relation.query_name: instance.pk}
            )
            changes.extend(
                Change(registration, pk, Action.UPDATE) for pk in pks.values_list("pk", flat=True)
            )
    record(using, changes)


def _changes(objects: Any, action: Action | str) -> tuple[str | None, list[Change]]:
    action = Action(action)
    if action not in CHANGE_ACTIONS:
        raise InvalidNotifyError(f"notify() takes create, update or delete, not {action.value}")
    if isinstance(objects, models.Model):
        items: Iterable[Any] = [objects]
        model: Any = type(objects)
        using = objects._state.db
    elif isinstance(objects, models.QuerySet):
        model, using = objects.model, objects.db
        items = list(objects)
    else:
        items = list(objects)
        if not items:
            return None, []
        model, using = type(items[0]), items[0]._state.db
    registered = registrations_for_model(model)
    if not registered:
        raise NotRegisteredError(
            f"{model.__name__} has no serializer registered with @model_subscription in this "
            "process. Decorated serializers are imported when Django starts if they are in an "
            "app's serializers module; otherwise name their module in "
            "STRAWBERRY_MODEL_SUBS['AUTODISCOVER']."
        )
    changes: list[Change] = []
    for item in items:
        if isinstance(item, models.Model):
            if type(item) is not model:
                raise InvalidNotifyError(
                    f"notify() takes objects of one model; got {model.__name__} and "
                    f"{type(item).__name__}"
                )
            if item.pk is None:
                raise InvalidNotifyError(
                    f"cannot notify about a {model.__name__} without a primary key"
                )
            for registration in registered:
                if action is Action.DELETE:
                    change = _snapshot(registration, item)
                    if change is not None:
                        changes.append(change)
                else:
                    changes.append(Change(registration, item.pk, action, instance=item))
        else:
            changes.extend(Change(registration, item, action) for registration in registered)
    return using, changes


def notify(objects: Any, action: Action | str) -> None:
    """Send events by hand for one object, an iterable of objects of one model, or a QuerySet.

    For changes the signals do not see: ``QuerySet.update()``, ``bulk_create()``, raw SQL or
    another program (or use :class:`~strawberry_model_subs.NotifyingQuerySet`). The objects
    given are serialized as saves are: on commit (a QuerySet is read once, now); a ``delete``
    at once, from the objects given. Inside a
    transaction the events are sent when it commits (coalesced with its other changes), and
    never if it rolls back. Call it from synchronous code; from async code use :func:`anotify`.

    Example::

        Product.objects.filter(price__lt=10).update(in_stock=False)
        notify(Product.objects.filter(price__lt=10), Action.UPDATE)

    Raises:
        NotRegisteredError: the model has no serializer registered in this process.
    """
    if in_event_loop():
        raise SyncOnlyError("notify() is for synchronous code; in async code, await anotify()")
    using, changes = _changes(objects, action)
    record(using, changes)


async def anotify(objects: Any, action: Action | str) -> None:
    """Async :func:`notify`: reads the objects in a worker thread, never blocking the loop."""
    await sync_to_async(_notify_sync)(objects, action)


def _notify_sync(objects: Any, action: Action | str) -> None:
    using, changes = _changes(objects, action)
    record(using, changes)
