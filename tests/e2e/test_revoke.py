"""``revoke(user)`` across processes: a third process (a ``django.setup()`` script) revokes a
user, and that user's connections on both servers close with 4403 while another user's stay."""

from __future__ import annotations

import asyncio
import secrets

import httpx
import pytest

from .clients import stream_socket, typed_socket
from .cluster import Cluster, make_users, run_script
from .harness import create_category

pytestmark = [pytest.mark.e2e, pytest.mark.services]

REVOKE = """
import sys
from django.contrib.auth.models import User
from strawberry_model_subs import revoke
revoke(User.objects.get(username=sys.argv[1]))
"""
CATEGORIES = "subscription { categoryChanged { data { name } } }"


async def test_revoke_in_another_process_closes_the_users_sockets_on_every_server(
    cluster: Cluster, http_clients: tuple[httpx.AsyncClient, ...]
) -> None:
    http_a, _ = http_clients
    run = secrets.token_hex(4)
    users = make_users(cluster, f"revoked-{run}", f"kept-{run}")
    revoked, kept = users[f"revoked-{run}"], users[f"kept-{run}"]
    async with (
        stream_socket(f"{cluster.a.ws_url}?token={revoked['token']}", "revoked, A") as on_a,
        typed_socket(cluster.b.ws_url, "revoked, B", payload={"token": revoked["token"]}) as on_b,
        typed_socket(cluster.b.ws_url, "kept, B", payload={"token": kept["token"]}) as other,
    ):
        await other.start("1", CATEGORIES)
        await asyncio.to_thread(run_script, cluster, REVOKE, f"revoked-{run}")
        assert await on_a.wait_closed() == 4403
        assert await on_b.wait_closed() == 4403
        await create_category(http_a, f"after {run}")
        message = await other.next_frame("an event after the revocation")
    assert message["payload"]["data"]["categoryChanged"]["data"]["name"] == f"after {run}"
