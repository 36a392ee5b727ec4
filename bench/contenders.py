"""What ``bench/run.py`` measures: each contender's server, interpreter and subscriber kind."""

from __future__ import annotations

from dataclasses import dataclass

#: The typed subscription of this library, one document shared by every subscriber.
SMS_TYPED = "subscription { itemChanged(action: UPDATE) { data { id name seq } } }"
#: 100 distinct documents (own operation name and alias, same selection), round-robin.
SMS_TYPED_100 = tuple(
    f"subscription Watch{k} {{ item{k}: itemChanged(action: UPDATE) {{ data {{ id name seq }} }} }}"
    for k in range(100)
)


@dataclass(frozen=True)
class Contender:
    name: str
    title: str
    #: "ours", "baseline" (the bare limit, the usual Channels and Strawberry patterns) or "peer".
    group: str
    #: The uvicorn application, imported from bench/servers.
    app: str
    #: The subscriber kind of bench/client.py.
    kind: str
    settings: str | None = None
    layer: str = "memory"
    #: A peer's own virtualenv (bench/peers/<venv>.txt); None: this repository's .venv.
    venv: str | None = None
    documents: tuple[str, ...] = ()

    @property
    def redis(self) -> bool:
        return self.layer != "memory"


CONTENDERS: tuple[Contender, ...] = (
    Contender(
        "bare",
        "bare limit: plain ASGI app, one pre-encoded frame to every socket",
        "baseline",
        "bare:app",
        "bare",
    ),
    Contender(
        "sms-stream",
        "this library, stream protocol, InMemoryChannelLayer",
        "ours",
        "sms_site.asgi:application",
        "stream",
        "sms_site.settings",
    ),
    Contender(
        "sms-stream-redis",
        "this library, stream protocol, RedisChannelLayer",
        "ours",
        "sms_site.asgi:application",
        "stream",
        "sms_site.settings",
        layer="redis",
    ),
    Contender(
        "sms-stream-pubsub",
        "this library, stream protocol, RedisPubSubChannelLayer",
        "ours",
        "sms_site.asgi:application",
        "stream",
        "sms_site.settings",
        layer="pubsub",
    ),
    Contender(
        "sms-gtws",
        "this library, itemChanged over graphql-transport-ws, one shared document",
        "ours",
        "sms_site.asgi:application",
        "gtws",
        "sms_site.settings",
        documents=(SMS_TYPED,),
    ),
    Contender(
        "sms-gtws-100docs",
        "this library, itemChanged over graphql-transport-ws, 100 distinct documents",
        "ours",
        "sms_site.asgi:application",
        "gtws",
        "sms_site.settings",
        documents=SMS_TYPED_100,
    ),
    Contender(
        "channels",
        "usual Channels pattern: AsyncJsonWebsocketConsumer per socket, group_send, in-memory",
        "baseline",
        "channels_site.asgi:application",
        "plain",
        "channels_site.settings",
    ),
    Contender(
        "channels-pubsub",
        "usual Channels pattern on RedisPubSubChannelLayer",
        "baseline",
        "channels_site.asgi:application",
        "plain",
        "channels_site.settings",
        layer="pubsub",
    ),
    Contender(
        "strawberry",
        "plain Strawberry GraphQLWSConsumer + listen_to_channel (graphql-transport-ws)",
        "baseline",
        "strawberry_site.asgi:application",
        "gtws",
        "strawberry_site.settings",
        documents=("subscription { itemChanged { id name seq } }",),
    ),
    Contender(
        "dcrf",
        "peer: djangochannelsrestframework 1.3.0, GenericAsyncAPIConsumer + @model_observer",
        "peer",
        "dcrf_site.asgi:application",
        "dcrf",
        "dcrf_site.settings",
        venv="dcrf",
    ),
    Contender(
        "dcgw",
        "peer: django-channels-graphql-ws 0.9.1 (graphene 2), graphql-ws protocol",
        "peer",
        "dcgw_site.asgi:application",
        "graphql-ws",
        "dcgw_site.settings",
        venv="dcgw",
        documents=("subscription { itemChanged { item { id name seq } } }",),
    ),
)

BY_NAME = {c.name: c for c in CONTENDERS}


# -- the write path (bench/write_path.py) -----------------------------------------------------


@dataclass(frozen=True)
class WriteLayer:
    """A channel layer the write-path table measures saves on, and its target."""

    name: str
    title: str
    #: The ``CHANNEL_LAYERS`` backend.
    backend: str
    #: The target: a save of the registered model (its event published and delivered to one
    #: subscriber) takes at most this many times a save of the same model unregistered.
    max_ratio: float

    @property
    def redis(self) -> bool:
        return self.name != "memory"


WRITE_LAYERS: tuple[WriteLayer, ...] = (
    WriteLayer("memory", "InMemoryChannelLayer", "channels.layers.InMemoryChannelLayer", 1.4),
    WriteLayer("redis", "RedisChannelLayer", "channels_redis.core.RedisChannelLayer", 1.5),
    WriteLayer(
        "pubsub", "RedisPubSubChannelLayer", "channels_redis.pubsub.RedisPubSubChannelLayer", 1.5
    ),
)

WRITE_LAYERS_BY_NAME = {layer.name: layer for layer in WRITE_LAYERS}
