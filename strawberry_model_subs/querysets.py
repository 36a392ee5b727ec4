"""An opt-in QuerySet whose bulk writes send their events.

``QuerySet.update()``, ``bulk_create()`` and ``bulk_update()`` send no model signals, so a
registered model written that way sends no events. Give the model this QuerySet (or the manager)
and they do, as saves do: on commit, coalesced with the transaction's other changes, each object
read back and serialized when published. ``QuerySet.delete()`` needs nothing: Django deletes a
model with delete receivers object by object and sends its signals.

Example::

    from strawberry_model_subs import NotifyingManager

    class Product(models.Model):
        ...
        objects = NotifyingManager()

    Product.objects.filter(price__lt=10).update(in_stock=False)  # one update event per product
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any, TypeVar

from django.db import models, transaction

from .capture import Change, record, touch
from .events import Action
from .registry import registrations_for_model

logger = logging.getLogger(__name__)

M = TypeVar("M", bound=models.Model)


class NotifyingQuerySet(models.QuerySet[M]):
    """A QuerySet whose ``update()``, ``bulk_create()`` and ``bulk_update()`` send events
    (``bulk_update()`` writes through ``update()``)."""

    def update(self, **kwargs: Any) -> int:
        """Update the rows, then send an ``update`` for each.

        The rows are selected (``SELECT ... FOR UPDATE`` where the database has it) and updated
        by primary key in one transaction, so the events name exactly the rows changed, also when
        the update makes them stop matching the filter: one query more than a plain update.
        """
        if not registrations_for_model(self.model):
            return super().update(**kwargs)
        with transaction.atomic(using=self.db, savepoint=False):
            pks = list(self.select_for_update().values_list("pk", flat=True))
            if not pks:
                return 0
            for pk in pks:
                touch(self.model, pk)
            count: int = self.model._base_manager.using(self.db).filter(pk__in=pks).update(**kwargs)
            self._record(pks, Action.UPDATE)
        return count

    def bulk_create(self, objs: Iterable[M], *args: Any, **kwargs: Any) -> list[M]:
        """Create the objects, then send a ``create`` for each one whose primary key the
        database returned (all of them on PostgreSQL and SQLite; see Django's docs)."""
        created = super().bulk_create(objs, *args, **kwargs)
        if registrations_for_model(self.model):
            pks = [obj.pk for obj in created if obj.pk is not None]
            if len(pks) < len(created):
                logger.warning(
                    "bulk_create() of %s: the database returned no primary key for %d of %d "
                    "objects; no event was sent for them",
                    self.model._meta.label,
                    len(created) - len(pks),
                    len(created),
                )
            action = Action.UPDATE if kwargs.get("update_conflicts") else Action.CREATE
            self._record(pks, action)
        return created

    def _record(self, pks: list[Any], action: Action) -> None:
        registered = registrations_for_model(self.model)
        record(self.db, [Change(r, pk, action) for pk in pks for r in registered])


class NotifyingManager(models.Manager.from_queryset(NotifyingQuerySet)):  # type: ignore[misc]
    """The default manager with :class:`NotifyingQuerySet` (``objects = NotifyingManager()``)."""
