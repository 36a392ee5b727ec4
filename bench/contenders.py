"""What ``bench/run.py`` measures: each contender's server, interpreter and subscriber kind, and
the targets the report judges it by; the write path's channel layers and theirs."""

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
class Targets:
    """What the "Targets" table judges a contender by (reported, not asserted); a limit left None
    is not judged. Latency, CPU and memory are taken at the largest N of the run."""

    #: How the table names the contender: its protocol, then what sets it apart ("in-memory").
    protocol: str = ""
    variant: str = ""
    #: Its p50 latency at most this many times the bare limit's.
    max_p50_ratio: float | None = None
    #: Its Redis commands per event at N=REDIS_GROWTH_N at most this many more than at N=1 (the
    #: commands do not grow with N).
    max_redis_growth: float | None = None
    #: Its CPU per delivered frame flat over N: the largest over the sizes at most this many
    #: times the smallest.
    max_cpu_spread: float | None = None
    #: Its CPU per delivered frame at most this many µs.
    max_cpu_us_per_frame: float | None = None
    #: Its idle memory per subscriber below this many KB.
    max_rss_kb_per_sub: float | None = None
    #: Its p50 latency at least this many times lower than each peer's.
    min_peer_speedup: float | None = None
    #: Its frames/s at its highest sustained rate (bench/client.py --rate-steps) at least this
    #: many times the bare app's at the bare app's highest.
    min_rate_ratio: float | None = None
    #: Its p99 in the sustained-rate run at most this many times the bare app's.
    max_sustained_p99_ratio: float | None = None


#: The N whose Redis commands per event are compared with N=1's (the largest N when it did not
#: run).
REDIS_GROWTH_N = 1000


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
    targets: Targets = Targets()

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
        targets=Targets(
            "stream protocol",
            "in-memory",
            max_p50_ratio=1.5,
            max_cpu_spread=1.25,
            max_cpu_us_per_frame=30,
            max_rss_kb_per_sub=30,
            min_peer_speedup=10,
            min_rate_ratio=0.9,
        ),
    ),
    Contender(
        "sms-stream-redis",
        "this library, stream protocol, RedisChannelLayer",
        "ours",
        "sms_site.asgi:application",
        "stream",
        "sms_site.settings",
        layer="redis",
        targets=Targets(
            "stream protocol", "RedisChannelLayer", max_p50_ratio=2.0, max_redis_growth=0.5
        ),
    ),
    Contender(
        "sms-stream-pubsub",
        "this library, stream protocol, RedisPubSubChannelLayer",
        "ours",
        "sms_site.asgi:application",
        "stream",
        "sms_site.settings",
        layer="pubsub",
        targets=Targets(
            "stream protocol", "RedisPubSubChannelLayer", max_p50_ratio=2.0, max_redis_growth=0.5
        ),
    ),
    Contender(
        "sms-gtws",
        "this library, itemChanged over graphql-transport-ws, one shared document",
        "ours",
        "sms_site.asgi:application",
        "gtws",
        "sms_site.settings",
        documents=(SMS_TYPED,),
        targets=Targets(
            "graphql-transport-ws", "one shared document", max_p50_ratio=2.0, min_rate_ratio=0.9
        ),
    ),
    Contender(
        "sms-gtws-100docs",
        "this library, itemChanged over graphql-transport-ws, 100 distinct documents",
        "ours",
        "sms_site.asgi:application",
        "gtws",
        "sms_site.settings",
        documents=SMS_TYPED_100,
        targets=Targets(
            "graphql-transport-ws",
            "100 distinct documents",
            max_p50_ratio=3.0,
            max_sustained_p99_ratio=1.5,
        ),
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
