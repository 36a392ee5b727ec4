"""``SyncResolvers``: plain sync resolvers that use the ORM, on async views and sockets.

Strawberry runs every resolver on the event loop of the async ``GraphQLView`` and of the
websocket consumer. A plain ``def`` resolver that touches the ORM then fails with Django's
``SynchronousOnlyOperation`` ("You cannot call this from an async context"). This schema
extension runs each field that has a sync resolver of its own in Django's thread for sync code
(asgiref's ``sync_to_async``, thread-sensitive, as Django runs sync views), and leaves every
other field (async resolvers, plain attributes, the generated event types) where it is.

Example::

    import strawberry
    from strawberry_model_subs import SyncResolvers, subscription_type

    schema = strawberry.Schema(
        query=Query, mutation=Mutation, subscription=subscription_type(),
        extensions=[SyncResolvers],
    )
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from typing import Any

from asgiref.sync import sync_to_async
from graphql import GraphQLObjectType, GraphQLResolveInfo
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.field import StrawberryField

#: GraphQL type -> field name -> whether the field has a sync resolver of its own.
_sync_fields: weakref.WeakKeyDictionary[GraphQLObjectType, dict[str, bool]] = (
    weakref.WeakKeyDictionary()
)


def _has_sync_resolver(info: GraphQLResolveInfo[Any]) -> bool:
    fields = _sync_fields.get(info.parent_type)
    if fields is None:
        fields = _sync_fields[info.parent_type] = {}
    known = fields.get(info.field_name)
    if known is None:
        field = info.parent_type.fields[info.field_name]
        definition = field.extensions.get(GraphQLCoreConverter.DEFINITION_BACKREF)
        known = (
            isinstance(definition, StrawberryField)
            and definition.base_resolver is not None
            and not definition.base_resolver.is_async
        )
        fields[info.field_name] = known
    return known


def _in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class SyncResolvers(SchemaExtension):
    """Run sync resolvers in Django's sync thread when the schema executes on an event loop.

    Only fields with a ``def`` resolver of their own move; on a sync execution
    (``schema.execute_sync``, Strawberry's sync view) nothing changes. A moved resolver runs in
    the thread Django gives sync code (``thread_sensitive=True``), so it shares that thread's
    database connection and transaction with the rest of the request's sync code.
    """

    def resolve(
        self,
        _next: Callable[..., Any],
        root: Any,
        info: GraphQLResolveInfo[Any],
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        """Resolve the field, in the sync thread when its resolver is sync."""
        if _has_sync_resolver(info) and _in_event_loop():
            return sync_to_async(_next, thread_sensitive=True)(root, info, *args, **kwargs)
        return _next(root, info, *args, **kwargs)
