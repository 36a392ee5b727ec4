"""``save_products``: change products from a plain synchronous process (no event loop, no server).

The scale-out tests run it as the third process, next to two servers: its saves go through the
library's signal bridge and ``notify()`` exactly as a management command, a cron job or a worker of
a real project would. Operations come as a JSON list, each an object with an ``op``:

* ``{"op": "create", "ref": "a", "name": "Kettle"}`` creates a product, known as ``a`` afterwards;
* ``{"op": "create_many", "prefix": "bulk-", "count": 200}`` creates ``bulk-0`` ... ``bulk-199``
  (each one ``save()``, so one event each), known by those names;
* ``{"op": "update", "ref": "a", "name": "Kettle, renamed"}`` renames and saves it;
* ``{"op": "notify_update", "ref": "a", "name": "..."}`` renames it with ``QuerySet.update()``,
  which sends no signal, then calls ``notify(product, "update")``;
* ``{"op": "delete", "ref": "a"}`` deletes it;
* ``{"op": "rolled_back_savepoint", "name": "..."}`` creates a product inside a savepoint that is
  rolled back.

A ``ref`` is a name given by an earlier ``create`` or an existing primary key (a number). Each
product is one Python object for the whole run, as in ordinary code that saves the same instance
several times.

The last line written to stdout is ``{"pks": {ref: pk, ...}}``. ``--atomic`` runs everything in one
transaction, ``--rollback`` rolls it back at the end, and ``--pause-before-commit`` writes that line
early, then waits for a line on stdin before leaving the transaction.
"""

from __future__ import annotations

import json
import sys
from contextlib import nullcontext
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from strawberry_model_subs import notify
from tests.testapp.models import Product


class RollBack(Exception):
    """Raised on purpose to roll a transaction back."""


class Command(BaseCommand):
    help = "Create, update, notify and delete products, to test events from a plain process."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("ops", help="the operations, as a JSON list (see the module docstring)")
        parser.add_argument(
            "--atomic", action="store_true", help="run every operation in one transaction"
        )
        parser.add_argument(
            "--rollback", action="store_true", help="roll the --atomic transaction back at the end"
        )
        parser.add_argument(
            "--pause-before-commit",
            action="store_true",
            help="with --atomic: print the pks, then wait for a line on stdin before committing",
        )

    @staticmethod
    def load_ops(text: str) -> list[Any]:
        """The ``ops`` argument, parsed (CommandError when it is no JSON list)."""
        try:
            ops = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CommandError(f"ops is not JSON: {exc}") from None
        if not isinstance(ops, list):
            raise CommandError("ops must be a JSON list")
        return ops

    def handle(self, *args: Any, **options: Any) -> None:
        ops = self.load_ops(options["ops"])
        if (options["rollback"] or options["pause_before_commit"]) and not options["atomic"]:
            raise CommandError("--rollback and --pause-before-commit need --atomic")
        self.products: dict[str, Product] = {}
        self.pks: dict[str, int] = {}
        try:
            with transaction.atomic() if options["atomic"] else nullcontext():
                for op in ops:
                    self.apply(op)
                if options["pause_before_commit"]:
                    self.report()
                    if not sys.stdin.readline():
                        raise CommandError("stdin closed before the go-ahead to commit")
                if options["rollback"]:
                    raise RollBack
        except RollBack:
            pass
        self.report()

    def report(self) -> None:
        self.stdout.write(json.dumps({"pks": self.pks}))
        self.stdout.flush()

    def product(self, ref: object) -> Product:
        if isinstance(ref, int):
            if str(ref) not in self.products:
                self.products[str(ref)] = Product.objects.get(pk=ref)
            return self.products[str(ref)]
        if not isinstance(ref, str) or ref not in self.products:
            raise CommandError(f"unknown ref {ref!r}: create it first, or pass a primary key")
        return self.products[ref]

    def create(self, ref: str, name: str) -> None:
        product = Product(name=name)
        product.save()
        self.products[ref] = product
        self.pks[ref] = product.pk

    def apply(self, op: dict[str, Any]) -> None:
        kind = op.get("op")
        if kind == "create":
            self.create(op["ref"], op["name"])
        elif kind == "create_many":
            for index in range(op["count"]):
                name = f"{op['prefix']}{index}"
                self.create(name, name)
        elif kind == "update":
            product = self.product(op["ref"])
            product.name = op["name"]
            product.save()
        elif kind == "notify_update":
            product = self.product(op["ref"])
            Product.objects.filter(pk=product.pk).update(name=op["name"])
            product.name = op["name"]
            notify(product, "update")
        elif kind == "delete":
            self.product(op["ref"]).delete()
        elif kind == "rolled_back_savepoint":
            try:
                with transaction.atomic():
                    Product.objects.create(name=op["name"])
                    raise RollBack
            except RollBack:
                pass
        else:
            raise CommandError(f"unknown op {op!r}")
