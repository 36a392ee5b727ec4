"""The stream protocol's handler: a socket's frames in, its answers and events out.

Beside Strawberry's two handlers (``ws_protocols``), this is the third protocol the consumer can
pick: the one of a client that offers no subprotocol (graphene-django-subscriptions' protocol, see
``frames``). It holds the socket's :class:`~strawberry_model_subs.session.StreamSession` and
knows nothing of Channels: it is given the schema and a :class:`Host`, the socket's side of it
(the consumer: Strawberry's ``get_context`` and ``process_result`` hooks, overridable there, and
the socket's send and close).
"""

from __future__ import annotations

from typing import Any, Protocol

from strawberry.schema import BaseSchema
from strawberry.schema.exceptions import CannotGetOperationTypeError
from strawberry.types import ExecutionResult

from .conf import get_settings
from .control import ControlMessage, ControlReply, reply_message
from .exceptions import ControlError, FrameError
from .execution import execute_once, operation_kind
from .frames import decode_request, dumps, error_frame
from .hub import Hub
from .session import StreamSession


class Host(Protocol):
    """The socket a handler serves, with Strawberry's view hooks (``GraphQLWSConsumer``).

    One reference per socket rather than a closure per hook: idle stream sockets are many.
    """

    async def get_context(self, request: Any, response: Any) -> Any:
        """The context of one operation run for this socket."""
        ...

    async def process_result(self, request: Any, result: ExecutionResult) -> Any:
        """What is answered for an execution result."""
        ...

    async def send(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Write one frame to the socket."""
        ...

    async def close(self, code: int | None = None) -> None:
        """Close the socket."""
        ...


class StreamHandler:
    """The stream protocol on one accepted socket, whose user is known."""

    def __init__(
        self,
        schema: BaseSchema,
        hub: Hub,
        user: Any,
        host: Host,
    ) -> None:
        self.schema = schema
        self.host = host
        self.session = StreamSession(hub, host.send, host.close, user)

    async def handle_text(self, text: str | None, size: int) -> None:
        """Answer one client frame of ``size`` characters (an error frame past MAX_FRAME_SIZE)."""
        limit = get_settings().MAX_FRAME_SIZE
        if size > limit:
            self.session.push_text(
                error_frame(f"frame too large: at most {limit} characters (MAX_FRAME_SIZE)")
            )
            return
        self.session.push_text(await self.answer(text))

    async def answer(self, text: str | None) -> str:
        """The response frame to one client frame: a control operation's result, a query's or
        a mutation's, or an error frame saying what to fix."""
        try:
            request = decode_request(text)
        except FrameError as exc:
            return error_frame(str(exc))
        query = request["query"]
        variables = request.get("variables")
        operation_name = request.get("operationName")
        kind = operation_kind(query, operation_name)
        if kind == "subscription":
            return error_frame(
                "only the control operations (the *Subscription fields) run on a stream socket; "
                "connect with the graphql-transport-ws subprotocol for other subscriptions"
            )
        context = await self.host.get_context(self.host, response=self.host)
        if kind == "control":
            result = await execute_once(self.schema, query, variables, operation_name, context)
        else:
            try:
                result = await self.schema.execute(
                    query,
                    variable_values=variables,
                    context_value=context,
                    operation_name=operation_name,
                )
            except CannotGetOperationTypeError as exc:
                return error_frame(exc.as_http_error_reason())
        return dumps(await self.host.process_result(self.host, result))

    async def control_from_layer(self, message: ControlMessage) -> ControlReply:
        """Apply a control operation another process ran for this socket; the reply to send."""
        error: str | None = None
        try:
            await self.session.apply(message["request"])
        except ControlError as exc:
            error = str(exc)
        return reply_message(error)

    async def close(self) -> None:
        """End the socket's subscriptions and its send queue."""
        await self.session.close()
