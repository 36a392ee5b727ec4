"""Create a contender's SQLite database (``migrate --run-syncdb``) and the item every event changes.

Run with the contender's own interpreter, in this folder, with ``DJANGO_SETTINGS_MODULE`` and
``BENCH_DB`` set (``bench/run.py`` does).
"""

from __future__ import annotations

import django
from django.core.management import call_command


def main() -> None:
    django.setup()
    call_command("migrate", run_syncdb=True, verbosity=0, interactive=False)
    from benchapp.models import Item
    from benchapp.views import ITEM_PK

    Item.objects.update_or_create(pk=ITEM_PK, defaults={"name": "item-0", "seq": 0})


if __name__ == "__main__":
    main()
