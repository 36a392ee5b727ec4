"""Aborting a connection whose peer takes no data, which ASGI has no message for.

A closing handshake needs the peer to read: a peer that stopped reading (a stalled or hostile
client) takes not even the close frame, and the ASGI server holds the connection, its buffers
and the consumer until the peer reads or goes, which may be never (TCP probes a zero window
forever). ``websocket.close`` waits behind the data the peer does not take (uvicorn waits for
its transport to be writable before any send). When the server's ``send`` callable is a
method of a protocol holding an asyncio transport (uvicorn's websocket protocols), the
connection can be aborted: the server then sees it lost and ends the consumer as for any
disconnect.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)


#: Wrappers of ``send`` between the server and the consumer that are looked through.
_MAX_WRAPPERS = 8


def transport_abort(send: Any) -> Callable[[], None] | None:
    """The ``abort`` of the asyncio transport behind the ASGI ``send`` callable, if the server
    exposes one; else None. uvicorn's ``send`` is a method of its protocol, which holds the
    transport; Channels' session middleware (``AuthMiddlewareStack``) wraps it in a method of
    an object that keeps it as ``real_send``."""
    for _ in range(_MAX_WRAPPERS):
        owner = getattr(send, "__self__", None)
        if owner is None:
            return None
        abort = getattr(getattr(owner, "transport", None), "abort", None)
        if callable(abort):
            return abort  # type: ignore[no-any-return]
        send = getattr(owner, "real_send", None)
    return None


def abort_connection(send: Any, waited: float) -> bool:
    """Abort the connection behind ``send`` after a close that did not go out in ``waited``
    seconds; whether it could be. Logged either way."""
    abort = transport_abort(send)
    if abort is None:
        logger.warning(
            "a socket took not even its close frame in %g s, and the ASGI server offers no way "
            "to abort it: it stays open until its peer reads or goes",
            waited,
        )
        return False
    logger.warning("a socket took not even its close frame in %g s: aborted", waited)
    abort()
    return True
