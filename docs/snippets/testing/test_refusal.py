# tests/test_refusal.py
import pytest
from project.asgi import application
from strawberry_model_subs.testing import TypedClient


@pytest.mark.django_db(transaction=True)
async def test_an_unknown_token_is_refused():
    # project.auth.authenticate (see Permissions and security) raises Rejected for it.
    client = TypedClient(application, "/ws/token", connection_params={"token": "wrong"})
    with pytest.raises(AssertionError, match="the server closed the socket"):
        await client.connect()
    assert client.closed == (4403, "Forbidden")
    await client.disconnect()
