"""Every error the library raises on purpose, in one hierarchy.

::

    ModelSubsError
    ├── RegistrationError              @model_subscription cannot register a serializer
    │   └── UnsupportedFieldError      a serializer field has no GraphQL type
    ├── ConfigurationError             the project is not set up the way the library needs
    ├── UsageError                     a library function was called the wrong way
    │   ├── NotRegisteredError         (also ValueError) notify() on a model with no stream
    │   ├── InvalidNotifyError         (also ValueError, TypeError) what notify() was given
    │   └── SyncOnlyError              (also RuntimeError) a sync API called in an event loop
    ├── Rejected                       an AUTHENTICATE hook refuses a connection (close 4403)
    ├── ControlError                   a subscribe/unsubscribe request cannot be carried out
    │   ├── PermissionDenied           ... because the user may not
    │   ├── FilterError                ... because its where filter cannot be run
    │   └── CursorError                ... because its resume cursor cannot be used
    │       ├── CursorExpired          the cursor is older than the history (CURSOR_EXPIRED)
    │       └── CursorInvalid          the cursor is not one the server gave out (CURSOR_INVALID)
    └── FrameError                     (also ValueError) a client frame is not a valid request

Errors found while a project starts (a serializer that cannot be registered, a field that cannot
be mapped, a missing setting) are raised at import time, name the culprit and say how to fix it.
Errors a client causes at run time never raise out of the library: they become a GraphQL error,
an ``ok: false`` result or the protocol's close code (``ControlError``, ``FrameError`` and
``Rejected`` are raised and answered inside it). The built-in bases some of them keep
(``ValueError``, ``TypeError``, ``RuntimeError``) are those they were raised as before, so code
that catches those still does. A GraphQL scalar's parser (``BigInt``) raises ``ValueError``, as
GraphQL scalars do: the GraphQL library turns it into a validation error.
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


class UsageError(ModelSubsError):
    """A function of the library was called in a way it does not support; the message says how."""


class NotRegisteredError(UsageError, ValueError):
    """``notify()`` was given a model with no serializer registered in this process."""


class InvalidNotifyError(UsageError, ValueError, TypeError):
    """``notify()`` was given an action other than create/update/delete, objects of more than
    one model, or an object without a primary key."""


class SyncOnlyError(UsageError, RuntimeError):
    """A synchronous function (``notify()``) was called in a running event loop; await its
    async twin (``anotify()``) instead."""


class Rejected(ModelSubsError):
    """Raised by an ``AUTHENTICATE`` hook to refuse a connection (close code 4403)."""


class ControlError(ModelSubsError):
    """A subscribe/unsubscribe request cannot be carried out; the message says why.

    Raised inside the library and answered to the client as ``ok: false`` with the message as
    ``error``; it never escapes to the caller.
    """


class PermissionDenied(ControlError):
    """A subscription or a control operation is not allowed for this user."""


class FilterError(ControlError):
    """A subscription's ``where`` filter cannot be run (a refused lookup, a field the user may
    not read); the message names the field."""


class CursorError(ControlError):
    """A resume cursor (``after``) cannot be used; ``code`` is the GraphQL error's
    ``extensions.code``. The client refetches its state and subscribes again without ``after``."""

    code = "CURSOR_ERROR"

    def __init__(self, message: str) -> None:
        super().__init__(f"{self.code}: {message}")


class CursorExpired(CursorError):
    """The cursor is older than the history kept, or of an earlier epoch (the history was lost):
    events after it may be gone."""

    code = "CURSOR_EXPIRED"


class CursorInvalid(CursorError):
    """The cursor is malformed: not one this server gave out."""

    code = "CURSOR_INVALID"


class FrameError(ModelSubsError, ValueError):
    """A client frame is not a valid request; the message tells the client what to fix."""
