"""Real-time GraphQL subscriptions on Django model changes, generated from DRF serializers.

Decorate a ``ModelSerializer`` with :func:`model_subscription`, add :func:`subscription_type` to
the Strawberry schema, mount :class:`~strawberry_model_subs.consumers.GraphQLWSConsumer` and
:class:`~strawberry_model_subs.views.GraphQLView`: every committed create, update and delete of
the model is pushed to the websocket clients that subscribed.
"""

from __future__ import annotations

#: The installed version (PEP 440).
__version__ = "0.1.0"

from .auth import Authenticated
from .bridge import anotify, notify
from .decorator import model_subscription
from .events import Action, Event, Operation
from .exceptions import (
    ConfigurationError,
    ControlError,
    CursorError,
    CursorExpired,
    CursorInvalid,
    FilterError,
    FrameError,
    InvalidNotifyError,
    ModelSubsError,
    NotRegisteredError,
    PermissionDenied,
    RegistrationError,
    Rejected,
    SyncOnlyError,
    UnsupportedFieldError,
    UsageError,
)
from .publisher import flush_events
from .querysets import NotifyingManager, NotifyingQuerySet
from .replay import acurrent_cursor, current_cursor
from .revocation import arevoke, revoke
from .scalars import BigInt
from .schema import (
    ConnectionRefresh,
    SubscriptionResult,
    cursor_field,
    refresh_connection_field,
    subscription_type,
)
from .sync_resolvers import SyncResolvers
from .typegen import FIELD_TYPES, Mapped

__all__ = [
    "FIELD_TYPES",
    "Action",
    "Authenticated",
    "BigInt",
    "ConfigurationError",
    "ConnectionRefresh",
    "ControlError",
    "CursorError",
    "CursorExpired",
    "CursorInvalid",
    "Event",
    "FilterError",
    "FrameError",
    "InvalidNotifyError",
    "Mapped",
    "ModelSubsError",
    "NotRegisteredError",
    "NotifyingManager",
    "NotifyingQuerySet",
    "Operation",
    "PermissionDenied",
    "RegistrationError",
    "Rejected",
    "SubscriptionResult",
    "SyncOnlyError",
    "SyncResolvers",
    "UnsupportedFieldError",
    "UsageError",
    "acurrent_cursor",
    "anotify",
    "arevoke",
    "current_cursor",
    "cursor_field",
    "flush_events",
    "model_subscription",
    "notify",
    "refresh_connection_field",
    "revoke",
    "subscription_type",
]
