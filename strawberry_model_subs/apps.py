"""The Django app: at startup it registers the system checks, imports the ``AUTODISCOVER``
modules and arranges for queued events to be published before the process exits."""

from __future__ import annotations

import atexit
import importlib
import logging
import sys

from django.apps import AppConfig
from django.utils.module_loading import autodiscover_modules

logger = logging.getLogger(__name__)


class StrawberryModelSubsConfig(AppConfig):
    """``"strawberry_model_subs"`` in ``INSTALLED_APPS``; its work is done in :meth:`ready`."""

    name = "strawberry_model_subs"
    verbose_name = "Strawberry model subscriptions"

    def ready(self) -> None:
        """Import the ``AUTODISCOVER`` modules (a dotted path as is, a bare name from every
        installed app: a serializer decorated after this is logged as late), then flush queued
        events at exit: by ``atexit``, and on ``worker_process_shutdown`` in a Celery pool
        process, which ends without running ``atexit``."""
        # Imported here: these modules import DRF and the models, which need the app registry.
        from . import (
            checks,  # noqa: F401  (registers the system checks)
            registry,
        )
        from .conf import get_settings
        from .publisher import flush_at_exit

        for module in get_settings().AUTODISCOVER:
            if "." in module:
                importlib.import_module(module)
            else:
                autodiscover_modules(module)
        registry.mark_discovered()
        atexit.register(flush_at_exit)
        if "celery" in sys.modules:
            # A Celery pool process ends with os._exit(): atexit does not run there.
            from celery.signals import worker_process_shutdown

            worker_process_shutdown.connect(flush_at_exit, weak=False, dispatch_uid=self.name)
