"""Every error the library raises on purpose.

Errors found while a project starts (a serializer that cannot be registered, a field that cannot be
mapped, a missing setting) are raised at import time, name the culprit and say how to fix it.
Errors a client causes at run time never raise out of the library: they become a GraphQL error,
an ``ok: false`` result or the protocol's close code.
"""

from __future__ import annotations


class ModelSubsError(Exception):
    """Base class of every exception raised by strawberry-model-subs."""


class RegistrationError(ModelSubsError):
    """A serializer cannot be registered with ``@model_subscription``."""


class UnsupportedFieldError(RegistrationError):
    """A serializer field has no GraphQL type; map it with ``field_types={...}``."""


class ConfigurationError(ModelSubsError):
    """The Django project is not set up the way the library needs."""


class NotRegisteredError(ModelSubsError, ValueError):
    """``notify()`` was given a model with no serializer registered in this process."""


class ControlError(ModelSubsError):
    """A subscribe/unsubscribe request cannot be carried out; the message says why.

    Raised inside the library and answered to the client as ``ok: false`` with the message as
    ``error``; it never escapes to the caller.
    """
