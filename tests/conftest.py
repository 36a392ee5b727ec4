from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from channels.layers import channel_layers

from strawberry_model_subs.testing import StreamClient
from tests.testapp.asgi import application


@pytest.fixture(autouse=True)
def _fresh_layer() -> Iterator[None]:
    """Every test starts with an empty in-memory layer (no group left over from another)."""
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@pytest.fixture
async def stream_client() -> AsyncIterator[StreamClient]:
    client = StreamClient(application)
    await client.connect()
    try:
        yield client
    finally:
        await client.disconnect()
