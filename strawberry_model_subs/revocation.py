"""Ending a user's connections in every server process: :func:`revoke` (on logout, when a token
is revoked, or when a user's rights change in a way no event shows).

Each hub holding a signed-in user's connection is a member of one more layer group; a revocation
is one message to it, and every process closes that user's connections with **4403**. Their
clients reconnect and are authenticated again, and their subscriptions are checked again as they
are made.
"""

from __future__ import annotations

from typing import Any

from .conf import get_settings
from .events import group_name
from .exceptions import SyncOnlyError, UsageError
from .hub import REVOKE_MESSAGE_TYPE, REVOKE_STREAM
from .layers import apublish, deliver_local, get_layer, in_event_loop, is_process_local, publish
from .permissions import user_key


def _message(user: Any) -> dict[str, Any]:
    key = user_key(user)
    if key is None:
        raise UsageError("revoke() takes a signed-in user: anonymous connections have no owner")
    return {"type": REVOKE_MESSAGE_TYPE, "user": key}


async def arevoke(user: Any) -> None:
    """End every websocket connection of ``user`` in every server process (closed with 4403).

    Example::

        from django.contrib.auth.signals import user_logged_out

        @receiver(user_logged_out)
        def end_sockets(sender, request, user, **kwargs):
            revoke(user)

    Raises:
        UsageError: ``user`` is anonymous.
    """
    message = _message(user)
    layer = get_layer()
    if is_process_local(layer):
        deliver_local(message)
    else:
        await apublish(group_name(get_settings().GROUP_PREFIX, REVOKE_STREAM), message)


def revoke(user: Any) -> None:
    """:func:`arevoke` for synchronous code (a view, a signal receiver, a task).

    Raises:
        UsageError: ``user`` is anonymous.
        SyncOnlyError: called in a running event loop (await :func:`arevoke`).
    """
    if in_event_loop():
        raise SyncOnlyError("revoke() is for synchronous code; in async code, await arevoke()")
    publish(group_name(get_settings().GROUP_PREFIX, REVOKE_STREAM), _message(user))
