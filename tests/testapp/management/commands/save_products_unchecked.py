"""``save_products_unchecked``: ``save_products`` as a command that runs no system check.

A command that runs the checks imports the URLconf, and through it the schema and the decorated
serializers, before it saves anything; one with ``requires_system_checks = []`` (like ``shell``, or
a cron job's command written that way) has its serializers registered only by the library's
autodiscovery at ``django.setup()``. ``tests/e2e/test_writers.py`` runs it as the "management
command" writer, and as the two writers that update the same products at once.

Options of its own, besides those of ``save_products``:

* ``--wait-for-go`` writes ``{"ready": pid, "round": 0}`` once Django is set up, then waits for a
  line on stdin before saving (so that two writers can be started together);
* ``--rounds N`` (with ``--wait-for-go``) splits the operations into N rounds, each waiting for
  its own go-ahead; after every round but the last, the command waits for the round's events to
  be published (``flush_events``) before it reports the round; the last round's are published at
  exit, as usual.

After each round it writes ``{"round": r, "started": t, "finished": t}``: the wall-clock times
(``time.time()``) around that round's operations, which tell whether two writers overlapped.
Refs by name do not carry over from one round to the next (use primary keys).
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

from django.core.management.base import CommandError, CommandParser

from strawberry_model_subs import flush_events

from .save_products import Command as SaveProducts

#: Seconds a round's events may take to be published.
FLUSH_TIMEOUT = 30.0


class Command(SaveProducts):
    help = "save_products without the system checks, optionally in rounds started on stdin."

    requires_system_checks = []  # noqa: RUF012  (Django's own spelling)

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--wait-for-go",
            action="store_true",
            help='write {"ready": pid, "round": r}, then wait for a line on stdin before saving',
        )
        parser.add_argument(
            "--rounds", type=int, default=1, help="with --wait-for-go: split the ops into rounds"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        rounds = options["rounds"]
        if rounds < 1 or (rounds > 1 and (options["atomic"] or not options["wait_for_go"])):
            raise CommandError("--rounds takes a positive count, needs --wait-for-go, no --atomic")
        ops = self.load_ops(options["ops"])
        size = -(-len(ops) // rounds)
        for index in range(rounds):
            if options["wait_for_go"]:
                self.report_line({"ready": os.getpid(), "round": index})
                if not sys.stdin.readline():
                    raise CommandError("stdin closed before the go-ahead")
            started = time.time()
            chunk = ops[index * size : (index + 1) * size]
            super().handle(*args, **{**options, "ops": json.dumps(chunk)})
            finished = time.time()
            if index < rounds - 1 and not flush_events(FLUSH_TIMEOUT):
                raise CommandError(f"round {index}: events not published in {FLUSH_TIMEOUT} s")
            self.report_line({"round": index, "started": started, "finished": finished})

    def report_line(self, report: dict[str, Any]) -> None:
        self.stdout.write(json.dumps(report))
        self.stdout.flush()
