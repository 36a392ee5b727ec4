"""Load the demo's users, groups and gadgets; running it again changes nothing."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand

from sample_site.demo.models import Gadget, Maker

USERS = [
    ("alice", "Alice", "Liddell", "alice@example.com", True),
    ("bob", "Bob", "Builder", "bob@example.com", False),
    ("carol", "Carol", "Danvers", "carol@example.com", False),
]
GROUPS = ["editors", "viewers"]
GADGETS = [("Kettle", "24.50", "Acme"), ("Lamp", "12.00", "Lumen")]


class Command(BaseCommand):
    help = "Load the demo data (idempotent)."

    def handle(self, *args: Any, **options: Any) -> None:
        created = 0
        for username, first, last, email, superuser in USERS:
            _, new = User.objects.get_or_create(
                username=username,
                defaults={
                    "first_name": first,
                    "last_name": last,
                    "email": email,
                    "is_superuser": superuser,
                },
            )
            created += new
        for name in GROUPS:
            created += Group.objects.get_or_create(name=name)[1]
        for name, price, maker_name in GADGETS:
            maker, new_maker = Maker.objects.get_or_create(name=maker_name)
            created += new_maker
            created += Gadget.objects.get_or_create(
                name=name, maker=maker, defaults={"price": Decimal(price)}
            )[1]
        self.stdout.write(f"demo data: {created} object(s) created")
