"""Control operations: subscribe or unsubscribe a stream socket named by its ``channel_id``.

A control operation may be run by any process (an HTTP request, another socket) for a socket held
by any process. When the socket lives in this process it is applied directly; otherwise it is sent
to the socket's channel over the layer and this process waits for the socket's answer, so the
caller learns whether it worked.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypedDict, cast

from django.core import signing

from .conf import get_settings
from .exceptions import ControlError
from .layers import get_layer, is_process_local, twice

if TYPE_CHECKING:
    # typing's from Python 3.11; only the type checker reads the annotations.
    from typing_extensions import NotRequired

CONTROL_MESSAGE_TYPE = "sms.control"
CHANNEL_NAME_RE = re.compile(r"^[a-zA-Z\d\-_.]+(![\d\w\-_.]*)?$")
MAX_CHANNEL_NAME_LENGTH = 100


class ControlRequest(TypedDict):
    """What to change on one socket; field names and ids already validated."""

    stream: str
    operation: Literal["subscribe", "unsubscribe"]
    action: Literal["create", "update", "delete", "all_actions"]
    #: The primary key as text (``events.pk_key``), or None for every object.
    pk: str | None
    #: Serializer field names, or None for every field.
    fields: list[str] | None
    #: Who asks (``permissions.user_key``): only the socket's own user may change it.
    requester: str | None
    #: Subscribe from this cursor ('' from now on), with frames that carry each event's
    #: cursor; None for frames exactly as graphene-django-subscriptions sends them.
    after: str | None
    #: The ``where`` filter as JSON data (``filters.where_spec``), or None for every object.
    where: NotRequired[dict[str, Any] | None]


class ControlMessage(TypedDict):
    """Sent over the layer to the channel of a socket held by another process."""

    type: Literal["sms.control"]
    request: ControlRequest
    reply_to: str


class ControlReply(TypedDict):
    """What arrives on a :class:`ControlMessage`'s ``reply_to``: the socket's answer, or the
    timeout the waiting process sends itself when none came within ``CONTROL_TIMEOUT``."""

    type: Literal["sms.control.reply", "sms.control.timeout"]
    ok: bool
    error: str | None


class HeldSocket(Protocol):
    """A stream socket of this process, as control operations see it (``session.StreamSession``)."""

    async def apply_from_any_loop(self, request: ControlRequest) -> None:
        """Apply ``request`` to the socket, from whichever event loop the caller runs on."""
        ...


#: Stream sockets held by this process, by channel name.
_sessions: dict[str, HeldSocket] = {}


def held_sockets() -> Mapping[str, HeldSocket]:
    """The stream sockets this process holds, by channel name (a read-only view): for tests and
    diagnostics, e.g. ``assert channel_name_of(channel_id) not in held_sockets()``."""
    return MappingProxyType(_sessions)


def register_session(channel_id: str, session: HeldSocket) -> None:
    """Hold ``session`` under its channel name (``channel_id`` is that name, not the signed id),
    replacing any socket held under it: control operations for it are then applied directly."""
    _sessions[channel_id] = session


def unregister_session(channel_id: str) -> None:
    """Stop holding the socket of channel name ``channel_id``; nothing happens if none is held."""
    _sessions.pop(channel_id, None)


def _signer() -> signing.Signer:
    # Built per call: Signer reads SECRET_KEY and SECRET_KEY_FALLBACKS when it is created, and
    # both may change (key rotation, override_settings).
    return signing.Signer(salt="strawberry_model_subs.channel_id")


def channel_id_for(channel_name: str) -> str:
    """The channel_id a stream socket is told: its channel name, signed with SECRET_KEY, so that
    nobody can forge the id of a socket from a channel name. Ids signed with a key of
    SECRET_KEY_FALLBACKS are still accepted while a key is rotated."""
    return _signer().sign(channel_name)


def channel_name_of(channel_id: str) -> str:
    """The channel name a channel_id stands for, or ControlError when it is malformed or forged."""
    try:
        name = _signer().unsign(channel_id)
    except signing.BadSignature:
        name = ""
    if not name or len(name) >= MAX_CHANNEL_NAME_LENGTH or not CHANNEL_NAME_RE.match(name):
        raise ControlError(
            f"channelId {channel_id[:120]!r} is malformed: pass the channel_id your stream socket "
            "received in its connect frame"
        )
    return name


def _unknown(channel_id: str) -> ControlError:
    return ControlError(
        f"no open stream socket has channelId {channel_id!r}: it has closed, or the id is wrong"
    )


async def apply_control(channel_id: str, request: ControlRequest) -> None:
    """Apply ``request`` to the socket ``channel_id``, wherever it is; raise ControlError if not."""
    channel_name = channel_name_of(channel_id)
    session = _sessions.get(channel_name)
    if session is not None:
        await session.apply_from_any_loop(request)
        return
    layer = get_layer()
    if is_process_local(layer):
        raise _unknown(channel_id)
    reply_to = await layer.new_channel()
    message: ControlMessage = {"type": "sms.control", "request": request, "reply_to": reply_to}
    try:
        await twice(lambda: layer.send(channel_name, message))
    except Exception as exc:
        raise ControlError(
            "the channel layer could not carry the request to the socket's server; try again"
        ) from exc
    # The wait ends with the socket's reply or with a timeout message sent to the same channel:
    # a receive blocked in Redis is never cancelled, since redis-py can lose the cancellation
    # and leave the receive running for good.
    timeout: ControlReply = {"type": "sms.control.timeout", "ok": False, "error": None}
    timer = asyncio.get_running_loop().call_later(
        get_settings().CONTROL_TIMEOUT,
        lambda: asyncio.ensure_future(layer.send(reply_to, dict(timeout))),
    )
    try:
        reply = cast(ControlReply, await layer.receive(reply_to))
    finally:
        timer.cancel()
    if reply.get("type") == "sms.control.timeout":
        raise _unknown(channel_id)
    if not reply.get("ok"):
        raise ControlError(str(reply.get("error") or "the socket refused the request"))


def reply_message(error: str | None) -> ControlReply:
    """A socket's answer to a control request: ok when ``error`` is None, else refused with it."""
    return {"type": "sms.control.reply", "ok": error is None, "error": error}
