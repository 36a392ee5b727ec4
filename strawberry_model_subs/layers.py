"""The channel layer the library uses, with a clear error when there is none."""

from __future__ import annotations

from typing import Any

from channels.layers import get_channel_layer

from .conf import get_settings
from .exceptions import ConfigurationError


def get_layer() -> Any:
    """The layer named by ``STRAWBERRY_MODEL_SUBS["CHANNEL_LAYER"]`` (raises when missing)."""
    alias = get_settings().CHANNEL_LAYER
    layer = get_channel_layer(alias)
    if layer is None:
        raise ConfigurationError(
            f"no channel layer {alias!r} in CHANNEL_LAYERS: strawberry-model-subs carries events "
            "on a Channels layer. Add CHANNEL_LAYERS = {'default': {'BACKEND': "
            "'channels.layers.InMemoryChannelLayer'}} for one process, or channels_redis for many."
        )
    return layer


def is_process_local(layer: Any) -> bool:
    """True when the layer cannot reach other processes (so an unknown channel is unknown)."""
    from channels.layers import InMemoryChannelLayer

    return isinstance(layer, InMemoryChannelLayer)
