"""The stream protocol's frames: TypedDicts and pure encode/decode/validate functions, no I/O.

This is the protocol of graphene-django-subscriptions, spoken on a websocket that offers no
subprotocol::

    server: {"channel_id": "<id>", "connect": "success"}
    client: {"query": "subscription { productSubscription(...) { ok error stream } }"}
    server: {"action": "update", "operation": "subscribe", "ok": true, "stream": "products",
             "error": null}
    server: {"data": {"productSubscription": {"ok": true, "error": null, "stream": "products"}}}
    server: {"stream": "products",
             "payload": {"action": "update", "model": "shop.product", "data": {"id": 5, ...}}}
"""

from __future__ import annotations

import json
from typing import Any, Literal, TypedDict

from .events import Event
from .exceptions import FrameError as FrameError


class ConnectFrame(TypedDict):
    """First frame on a stream socket: the id that control operations name it by."""

    channel_id: str
    connect: Literal["success"]


class AckFrame(TypedDict):
    """Sent to the socket when a subscribe or unsubscribe naming it succeeded."""

    action: Literal["create", "update", "delete", "all_actions"]
    operation: Literal["subscribe", "unsubscribe"]
    ok: Literal[True]
    stream: str
    error: None


class Payload(TypedDict):
    """The change a :class:`StreamFrame` carries: its model label (``"shop.product"``) and the
    serializer's data, only the fields the socket asked for."""

    action: Literal["create", "update", "delete"]
    model: str
    data: dict[str, Any]


class StreamFrame(TypedDict):
    """One change, with only the fields the socket asked for."""

    stream: str
    payload: Payload


class RequestFrame(TypedDict, total=False):
    """A GraphQL request sent as a text frame on the stream socket."""

    query: str
    variables: dict[str, Any] | None
    operationName: str | None


class ResponseFrame(TypedDict, total=False):
    """The GraphQL response to a :class:`RequestFrame`, as GraphQL over HTTP would give it."""

    data: dict[str, Any] | None
    errors: list[dict[str, Any]]


def dumps(frame: object) -> str:
    """Compact JSON with ASCII escapes: a lone surrogate echoed from a client's frame must still
    encode as UTF-8."""
    return json.dumps(frame, separators=(",", ":"))


def connect_frame(channel_id: str) -> str:
    """The first frame of a stream socket, telling it ``channel_id``, the id to control it by."""
    frame: ConnectFrame = {"channel_id": channel_id, "connect": "success"}
    return dumps(frame)


def ack_frame(operation: str, action: str, stream: str) -> str:
    """The frame telling a socket that a subscribe or unsubscribe naming it succeeded."""
    frame = {"action": action, "operation": operation, "ok": True, "stream": stream, "error": None}
    return dumps(frame)


def error_frame(message: str) -> str:
    """A GraphQL response with no data and the single error ``message``."""
    frame: ResponseFrame = {"data": None, "errors": [{"message": message}]}
    return dumps(frame)


def stream_frame(event: Event, fields: frozenset[str] | None) -> str:
    """The frame for ``event`` carrying ``fields`` (None: every field), built once per projection.

    The full frame splices the event's JSON text; a projection encodes its subset once, and every
    socket that asked for the same fields gets the same string.
    """
    frame = event.frames.get(fields)
    if frame is None:
        head = (
            f'{{"stream":{dumps(event.stream)},"payload":{{"action":"{event.action.value}",'
            f'"model":{dumps(event.model)},"data":'
        )
        body = event.raw if fields is None else dumps(project(event.data, fields))
        # A filtered subscription's frames say whether the object moved in or out of the filter.
        moved = (
            (',"moved":true' if event.moved else ',"moved":false') if event.seen_filtered else ""
        )
        frame = event.frames[fields] = f"{head}{body}{moved}}}}}"
    return frame


def cursor_frame(event: Event, fields: frozenset[str] | None) -> str:
    """:func:`stream_frame` with the event's cursor beside ``stream`` and ``payload`` (for
    subscriptions made with ``after``), built once per projection."""
    key = ("cursor", fields)
    frame = event.frames.get(key)
    if frame is None:
        plain = stream_frame(event, fields)
        frame = event.frames[key] = f'{plain[:-1]},"cursor":{dumps(event.cursor or "")}}}'
    return frame


def project(data: dict[str, Any], fields: frozenset[str]) -> dict[str, Any]:
    """Keep only ``fields`` of ``data``, in the serializer's order."""
    return {key: value for key, value in data.items() if key in fields}


def merge_fields(a: frozenset[str] | None, b: frozenset[str] | None) -> frozenset[str] | None:
    """The union of two field selections, where None means every field."""
    if a is None or b is None:
        return None
    return a | b


def request_problem(request: object, what: str = "frame") -> str | None:
    """Why ``request`` is not a GraphQL request object (``{"query", "variables",
    "operationName"}``), or None: the stream protocol's frames and the subscription protocols'
    operation payloads are checked alike.

    >>> request_problem({"query": "{ a }", "variables": [1]})
    '"variables" must be a JSON object or null'
    """
    if not isinstance(request, dict):
        return f'{what} must be a JSON object like {{"query": "...", "variables": {{...}}}}'
    query = request.get("query")
    if not isinstance(query, str) or not query.strip():
        return f'{what} must have a "query" string holding a GraphQL document'
    variables = request.get("variables")
    if variables is not None and not isinstance(variables, dict):
        return '"variables" must be a JSON object or null'
    operation_name = request.get("operationName")
    if operation_name is not None and not isinstance(operation_name, str):
        return '"operationName" must be a string or null'
    return None


def decode_request(text: str | None) -> RequestFrame:
    """Parse a client's text frame into a GraphQL request, or raise :class:`FrameError`."""
    if text is None:
        raise FrameError("binary frames are not accepted: send a JSON text frame")
    try:
        frame = json.loads(text)
    except ValueError as exc:
        raise FrameError(f"frame is not valid JSON: {exc}") from None
    except RecursionError:
        raise FrameError("frame is not valid JSON: nested too deeply") from None
    problem = request_problem(frame)
    if problem is not None:
        raise FrameError(problem)
    query, variables, operation_name = (
        frame["query"],
        frame.get("variables"),
        frame.get("operationName"),
    )
    return {"query": query, "variables": variables, "operationName": operation_name}
