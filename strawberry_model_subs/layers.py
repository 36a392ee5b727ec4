"""The channel layer the library uses, and how events are published to it from any thread.

Model signals fire in synchronous code: a request thread of the ASGI server, a plain thread, a
management command or a worker process with no event loop at all. :func:`publish` picks, for each,
a way that neither blocks an event loop nor opens a connection per event:

* inside ``sync_to_async`` (Django's async views, ``asave()``, an ASGI server's sync views), the
  send runs on the server's own event loop, through ``async_to_sync``;
* anywhere else, on the in-memory layer, it is handed to the loop of each hub of this process
  directly (the in-memory layer is not thread-safe, and only this process can receive);
* anywhere else, on a layer that reaches other processes, it runs on one background event loop
  thread per process, which keeps the layer's connections for the next event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import weakref
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import Future
from typing import Any, Protocol, TypeVar, cast

from asgiref.sync import SyncToAsync, async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer

from .conf import get_settings
from .exceptions import ConfigurationError

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Seconds a synchronous publish waits for the layer before giving up (and logging).
PUBLISH_TIMEOUT = 10.0


class ChannelLayer(Protocol):
    """The part of the Channels layer spec the library uses (the "groups" extension included),
    as Strawberry types it (``strawberry.channels.handlers.base.ChannelsLayer``)."""

    async def send(self, channel: str, message: Mapping[str, Any]) -> None:
        """Send ``message`` to one channel."""
        ...

    async def receive(self, channel: str) -> dict[str, Any]:
        """The next message of ``channel``."""
        ...

    async def new_channel(self, prefix: str = ...) -> str:
        """A new channel name, unique to this layer."""
        ...

    async def group_add(self, group: str, channel: str) -> None:
        """Add ``channel`` to ``group``."""
        ...

    async def group_discard(self, group: str, channel: str) -> None:
        """Remove ``channel`` from ``group``."""
        ...

    async def group_send(self, group: str, message: Mapping[str, Any]) -> None:
        """Send ``message`` to every channel of ``group``."""
        ...


def get_layer() -> ChannelLayer:
    """The layer named by ``STRAWBERRY_MODEL_SUBS["CHANNEL_LAYER"]`` (raises when missing)."""
    alias = get_settings().CHANNEL_LAYER
    layer = get_channel_layer(alias)
    if layer is None:
        raise ConfigurationError(
            f"no channel layer {alias!r} in CHANNEL_LAYERS: strawberry-model-subs carries events "
            "on a Channels layer. Add CHANNEL_LAYERS = {'default': {'BACKEND': "
            "'channels.layers.InMemoryChannelLayer'}} for one process, or channels_redis for many."
        )
    # The stubs type messages as dict[str, Any]; the protocol takes the library's TypedDict
    # messages (dicts at run time, which every layer requires) as Mappings.
    return cast(ChannelLayer, layer)


def is_process_local(layer: object) -> bool:
    """True when the layer cannot reach other processes (so an unknown channel is unknown)."""
    return isinstance(layer, InMemoryChannelLayer)


def redis_host(layer: Any) -> dict[str, Any]:
    """The connection settings of the first Redis host of a channels_redis layer (where the
    publisher keeps its stream versions)."""
    from channels_redis.utils import decode_hosts

    hosts = getattr(layer, "hosts", None)
    if hosts is None:  # RedisPubSubChannelLayer keeps its arguments
        hosts = decode_hosts(getattr(layer, "_kwargs", {}).get("hosts"))
    return dict(hosts[0])


def redis_key_prefix(layer: Any) -> str:
    """The prefix of the keys the library keeps beside a Redis layer's own (stream versions,
    histories): the layer's key prefix (channels_redis' ``prefix``, ``"asgi"`` by default), then
    ``GROUP_PREFIX``. Two sites on one Redis database whose layers differ in either never share
    a stream's versions or history, as they share no group."""
    own = vars(layer)
    if "_kwargs" in own:  # RedisPubSubChannelLayer keeps its arguments (see redis_host)
        prefix = own["_kwargs"].get("prefix", "asgi")
    else:
        prefix = getattr(layer, "prefix", "asgi")
    return f"{prefix}:{get_settings().GROUP_PREFIX}"


#: loop -> (the Redis host, a client of it on that loop): see :func:`redis_eval`.
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[dict[str, Any], Any]] = (
    weakref.WeakKeyDictionary()
)


async def redis_eval(layer: Any, script: str, keys: list[str], args: list[Any]) -> Any:
    """Run a Lua script on the first Redis host of a channels_redis layer, with a client of the
    running event loop (made on first use, kept for the loop's lifetime)."""
    # channels_redis (and redis-py with it) is an optional dependency: imported for its layers.
    import redis.asyncio as aioredis
    from channels_redis.utils import create_pool
    from redis.exceptions import ConnectionError as RedisConnectionError

    loop = asyncio.get_running_loop()
    host = redis_host(layer)
    known = _clients.get(loop)
    if known is None or known[0] != host:
        known = _clients[loop] = (host, aioredis.Redis(connection_pool=create_pool(host)))
    client = known[1]
    return await twice(lambda: client.eval(script, len(keys), *keys, *args), RedisConnectionError)


def tune_blocking_reads(layer: Any) -> None:
    """Keep channels_redis' blocking read shorter than the socket's read timeout.

    RedisChannelLayer waits up to 5 s in ``BZPOPMIN``, and redis-py 8 times a read out after
    5 s by default: with the host written as the Channels documentation shows, an idle receiver
    fails every few seconds (and a message popped as the client gives up is lost). A host with no
    ``socket_timeout``, or one of 5 s or less, gets a blocking read of half of it (at most 2 s)
    on this layer object; a longer timeout leaves channels_redis as it is.
    """
    brpop = getattr(layer, "brpop_timeout", None)
    hosts = getattr(layer, "hosts", None)
    if not isinstance(brpop, (int, float)) or not hosts:
        return
    timeouts = [h.get("socket_timeout", 5.0) if isinstance(h, dict) else 5.0 for h in hosts]
    shortest = min((t for t in timeouts if t is not None), default=None)
    if shortest is not None and shortest <= brpop:
        layer.brpop_timeout = max(0.5, min(2.0, shortest / 2))


def is_benign_timeout(exc: BaseException) -> bool:
    """Whether a receive failed only because redis-py timed a blocking read out (the layer's
    next receive works: see :func:`tune_blocking_reads`)."""
    try:
        # channels_redis (and redis-py with it) is an optional dependency.
        from redis.exceptions import TimeoutError as RedisTimeout
    except ImportError:
        return False
    return isinstance(exc, RedisTimeout)


def in_event_loop() -> bool:
    """Whether this thread is running an event loop (where sync publishing would block it)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class LocalReceiver(Protocol):
    """What receives layer messages in this process without the layer (a hub, on its loop)."""

    @property
    def listening(self) -> bool:
        """Whether it has anything to deliver messages to."""
        ...

    def receive_message(self, message: dict[str, Any]) -> None:
        """Take one layer message; called on the receiver's own event loop."""
        ...


_local: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LocalReceiver] = (
    weakref.WeakKeyDictionary()
)
_local_lock = threading.Lock()


def add_local_receiver(loop: asyncio.AbstractEventLoop, receiver: LocalReceiver) -> None:
    """Have :func:`deliver_local` hand messages to ``receiver`` on ``loop`` (one per loop)."""
    with _local_lock:
        _local[loop] = receiver


def deliver_local(message: dict[str, Any]) -> None:
    """Hand a layer message to every listening local receiver of this process, each on its own
    loop: for the in-memory layer, whose queues are not thread-safe and whose every receiver is
    in this process, from a thread that runs no loop of its own."""
    with _local_lock:
        receivers = [
            (loop, receiver)
            for loop, receiver in _local.items()
            if receiver.listening and not loop.is_closed()
        ]
    for loop, receiver in receivers:
        loop.call_soon_threadsafe(receiver.receive_message, message)


def publish(group: str, message: dict[str, Any]) -> None:
    """Send ``message`` to ``group`` from synchronous code, whatever thread this is."""
    if in_event_loop():
        raise RuntimeError("publish() is for synchronous code; await apublish() instead")
    layer = get_layer()
    if getattr(SyncToAsync.threadlocal, "main_event_loop", None) is not None:
        async_to_sync(apublish)(group, message)
    elif is_process_local(layer):
        deliver_local(message)
    else:
        _background_loop().submit(apublish(group, message)).result(PUBLISH_TIMEOUT)


async def twice(
    call: Callable[[], Awaitable[T]],
    retry_on: type[BaseException] | tuple[type[BaseException], ...] = Exception,
) -> T:
    """Await ``call()``, and once more if it raises ``retry_on``: after a Redis restart the first
    command on a pooled connection fails, and the second opens a fresh one. A second failure
    propagates."""
    try:
        return await call()
    except retry_on:
        return await call()


async def apublish(group: str, message: dict[str, Any]) -> None:
    """Send ``message`` to ``group`` from async code (tried :func:`twice`)."""
    layer = get_layer()
    await twice(lambda: layer.group_send(group, message))


def run_sync(function: Callable[..., Awaitable[Any]], *args: Any) -> Any:
    """Run ``await function(*args)`` from synchronous code, whatever thread this is: on the
    server's loop inside ``sync_to_async``, else on the process's background loop."""
    if getattr(SyncToAsync.threadlocal, "main_event_loop", None) is not None:
        return async_to_sync(function)(*args)
    return _background_loop().submit(function(*args)).result(PUBLISH_TIMEOUT)


class _LoopThread:
    """An event loop in a daemon thread, for publishing from threads that have none."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="strawberry-model-subs publisher", daemon=True
        )
        self.thread.start()

    def submit(self, coroutine: Any) -> Future[Any]:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)


_loop_thread: _LoopThread | None = None
_loop_thread_lock = threading.Lock()


def _background_loop() -> _LoopThread:
    global _loop_thread
    with _loop_thread_lock:
        if _loop_thread is None or not _loop_thread.thread.is_alive():
            _loop_thread = _LoopThread()
        return _loop_thread


# -- receiving ----------------------------------------------------------------------------


def resilient(
    receive: Callable[[], Awaitable[dict[str, Any]]],
) -> Callable[[], Awaitable[dict[str, Any]]]:
    """``receive`` retried every second while the layer fails, logged once per outage.

    The receive runs as a task of its own: when the consumer ends and cancels the wait, the
    receive is cancelled until it stops, since redis-py can lose one cancellation and leave a
    receive running forever.
    """

    async def receive_until_it_works() -> dict[str, Any]:
        while True:
            task = asyncio.ensure_future(receive())
            try:
                message = await asyncio.shield(task)
            except asyncio.CancelledError:
                if not task.done():
                    asyncio.get_running_loop().create_task(_cancel_until_done(task))
                raise
            except Exception:
                if not _receive_outage.down:
                    _receive_outage.down = True
                    logger.exception("channel layer receive failed; sockets stay open, retrying")
                await asyncio.sleep(1.0)
                continue
            _receive_outage.down = False
            return message

    return receive_until_it_works


async def _cancel_until_done(task: asyncio.Future[Any], tries: int = 50) -> None:
    for _ in range(tries):
        task.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(asyncio.shield(task), 0.2)
        if task.done():
            return
    logger.warning("a channel layer receive ignored %d cancellations", tries)


class _ReceiveOutage:
    """Whether this process's layer receives are failing: logged once per outage, for all
    sockets."""

    down = False


_receive_outage = _ReceiveOutage()


async def never_receive() -> dict[str, Any]:
    """A receive that never returns (until cancelled with its consumer)."""
    await asyncio.get_running_loop().create_future()
    raise AssertionError("unreachable")
