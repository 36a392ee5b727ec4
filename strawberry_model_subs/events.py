"""Events, actions and the channel-layer messages that carry them between processes.

Everything here is pure: building and reading layer messages, naming groups. One committed change
becomes one :class:`Event`, serialized once; every subscriber in every process shares it.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict

import strawberry
from rest_framework.utils.encoders import JSONEncoder

from .exceptions import RegistrationError


@strawberry.enum(description="A kind of model change; ALL_ACTIONS stands for all three.")
class Action(enum.Enum):
    """What a change did; ALL_ACTIONS is for subscriptions only, never an event's action."""

    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    ALL_ACTIONS = "all_actions"


@strawberry.enum(description="What a control operation does to the socket's subscriptions.")
class Operation(enum.Enum):
    """Whether a control operation adds a subscription to the socket or removes one."""

    SUBSCRIBE = "subscribe"
    UNSUBSCRIBE = "unsubscribe"


#: The actions a change can have (everything but ALL_ACTIONS).
CHANGE_ACTIONS = (Action.CREATE, Action.UPDATE, Action.DELETE)

ActionValue = Literal["create", "update", "delete"]

EVENT_MESSAGE_TYPE = "sms.event"
BATCH_MESSAGE_TYPE = "sms.events"


class _EventMessageBase(TypedDict):
    type: Literal["sms.event"]
    stream: str
    action: ActionValue
    model: str
    #: The primary key as text (see :func:`pk_key`); subscriptions by id match on it.
    pk: str
    #: The serializer's representation, JSON-encoded once by the process that saved the model.
    data: str


class EventMessage(_EventMessageBase, total=False):
    """What crosses the channel layer for one change of one object.

    ``epoch`` and ``version`` order the events of a stream: versions increase, within one epoch,
    in the order the events were read from the database, the same in every process (see
    ``publisher``); a hub drops an event older than one it already dispatched for the same object.
    Messages without them (sent by hand) are never dropped.
    """

    epoch: str
    version: int
    #: A follow-up: the publisher found the row changed by another process (see ``publisher``).
    followup: bool
    #: The event's place in its stream's history (see ``cursors``), and the offset of the event
    #: before it there: absent when the history is off (``HISTORY_SIZE = 0``) or sent by hand.
    cursor: str
    prev: str
    #: An update's values before it of the filterable fields it changed, JSON-encoded
    #: (``{"price": "12.00"}``): how a filtered subscription tells an object that entered or
    #: left its filter (see ``hub.seen_as``).
    before: str


class BatchMessage(TypedDict):
    """The events one publisher sends to one stream's group in one go, in order."""

    type: Literal["sms.events"]
    stream: str
    events: list[EventMessage]


@dataclass(eq=False)
class Event:
    """One committed change of one object, as every subscriber of its stream sees it.

    ``data`` is the serializer's representation (JSON-ready values). ``raw`` is the same data as
    JSON text, so a frame carrying every field is spliced rather than encoded again. Frames built
    for a projection of the fields are cached in ``frames`` for the lifetime of the event.
    """

    stream: str
    action: Action
    model: str
    pk: str
    data: dict[str, Any]
    raw: str
    #: The event's place in its stream (see :class:`EventMessage`); None when sent by hand.
    epoch: str | None = None
    version: int | None = None
    followup: bool = False
    #: Its cursor and the offset before it (see :class:`EventMessage`).
    cursor: str | None = None
    prev: str | None = None
    #: An update's values before it of the filterable fields it changed (None: unknown).
    before: dict[str, Any] | None = None
    #: As a filtered subscription sees it (see :meth:`view`): ``moved`` says whether the
    #: object entered or left the filter rather than being created or deleted.
    seen_filtered: bool = False
    moved: bool = False
    frames: dict[frozenset[str] | tuple[str, frozenset[str] | None] | None, str] = field(
        default_factory=dict, repr=False
    )
    _views: dict[tuple[Action, bool, bool], Event] | None = field(default=None, repr=False)
    _before_view: Event | None = field(default=None, repr=False)

    def view(self, action: Action, moved: bool, filtered: bool) -> Event:
        """This event as a subscriber receives it: as ``action`` (an update that made the
        object visible to it is a create, one that hid it a delete), with ``moved``, and
        ``filtered`` for a subscription made with a filter (its frames say ``moved``); the
        event itself when nothing differs, else one copy per kind, shared by every such
        subscriber (its frames are cached on it)."""
        if action is self.action and not moved and filtered is self.seen_filtered:
            return self
        views = self._views
        if views is None:
            views = self._views = {}
        key = (action, moved, filtered)
        view = views.get(key)
        if view is None:
            view = views[key] = dataclasses.replace(
                self, action=action, seen_filtered=filtered, moved=moved, frames={}, _views=None
            )
        return view

    def as_before(self) -> Event:
        """This update's object as it was before (its data with the ``before`` values), made
        once per event."""
        if self._before_view is None:
            data = {**self.data, **(self.before or {})}
            self._before_view = dataclasses.replace(
                self, data=data, raw=encode_data(data), before=None, frames={}, _views=None
            )
        return self._before_view


GROUP_NAME_RE = re.compile(r"^[a-zA-Z\d\-_.]+$")
MAX_GROUP_NAME_LENGTH = 100


def group_name(prefix: str, stream: str) -> str:
    """The layer group every process with subscribers of ``stream`` joins once."""
    return f"{prefix}.{stream}"


def check_stream_name(stream: object, prefix: str) -> str:
    """Return ``stream`` if it makes a valid Channels group name, else raise RegistrationError."""
    if not isinstance(stream, str) or not stream:
        raise RegistrationError(f"stream must be a non-empty string, not {stream!r}.")
    if stream.startswith("__"):
        raise RegistrationError(f"stream {stream!r}: names starting with '__' are the library's.")
    group = group_name(prefix, stream)
    if not GROUP_NAME_RE.match(stream) or len(group) >= MAX_GROUP_NAME_LENGTH:
        raise RegistrationError(
            f"stream {stream!r} cannot name a channel-layer group: use ASCII letters, digits, "
            f"'-', '_' and '.', with the group name {group!r} under {MAX_GROUP_NAME_LENGTH} "
            "characters."
        )
    return stream


def pk_key(pk: object) -> str:
    """The text form of a primary key that events and subscriptions are matched on."""
    return str(pk)


def encode_data(data: Any) -> str:
    """JSON-encode a serializer representation (Decimal, datetime, UUID... as DRF renders them)."""
    return json.dumps(data, cls=JSONEncoder, ensure_ascii=False, separators=(",", ":"))


def event_message(
    stream: str,
    action: Action,
    model: str,
    pk: object,
    data: Any,
    *,
    raw: str | None = None,
) -> EventMessage:
    """Build the layer message for one change of one object (``raw``: ``data`` already encoded)."""
    if action not in CHANGE_ACTIONS:
        raise ValueError(f"an event's action is create, update or delete, not {action!r}")
    return {
        "type": "sms.event",
        "stream": stream,
        "action": action.value,  # type: ignore[typeddict-item]
        "model": model,
        "pk": pk_key(pk),
        "data": raw if raw is not None else encode_data(data),
    }


def decode_event(message: EventMessage) -> Event:
    """Turn a received layer message back into an :class:`Event` (raises on a malformed one)."""
    raw = message["data"]
    return Event(
        stream=message["stream"],
        action=Action(message["action"]),
        model=message["model"],
        pk=message["pk"],
        data=json.loads(raw),
        raw=raw,
        epoch=message.get("epoch"),
        version=message.get("version"),
        followup=bool(message.get("followup", False)),
        cursor=message.get("cursor"),
        prev=message.get("prev"),
        before=json.loads(before) if (before := message.get("before")) else None,
    )
