from __future__ import annotations

import json

import pytest

from strawberry_model_subs.events import Action, Event
from strawberry_model_subs.frames import (
    FrameError,
    ack_frame,
    connect_frame,
    decode_request,
    error_frame,
    merge_fields,
    project,
    stream_frame,
)


def make_event(data: dict[str, object]) -> Event:
    raw = json.dumps(data)
    return Event("products", Action.UPDATE, "shop.product", "5", json.loads(raw), raw)


def test_connect_and_ack_frames_have_the_seed_shape() -> None:
    assert json.loads(connect_frame("specific.x!y")) == {
        "channel_id": "specific.x!y",
        "connect": "success",
    }
    assert json.loads(ack_frame("subscribe", "update", "products")) == {
        "action": "update",
        "operation": "subscribe",
        "ok": True,
        "stream": "products",
        "error": None,
    }


def test_stream_frame_with_every_field_splices_the_event_json() -> None:
    event = make_event({"id": 5, "name": "Tea", "price": "1.50"})
    assert json.loads(stream_frame(event, None)) == {
        "stream": "products",
        "payload": {
            "action": "update",
            "model": "shop.product",
            "data": {"id": 5, "name": "Tea", "price": "1.50"},
        },
    }


def test_stream_frame_projects_and_is_encoded_once_per_projection() -> None:
    event = make_event({"id": 5, "name": "Tea", "price": "1.50"})
    first = stream_frame(event, frozenset({"name", "id"}))
    assert json.loads(first)["payload"]["data"] == {"id": 5, "name": "Tea"}
    assert stream_frame(event, frozenset({"id", "name"})) is first
    assert json.loads(stream_frame(event, frozenset({"price"})))["payload"]["data"] == {
        "price": "1.50"
    }


def test_project_keeps_serializer_order_and_ignores_unknown_fields() -> None:
    assert list(project({"a": 1, "b": 2, "c": 3}, frozenset({"c", "a", "zz"}))) == ["a", "c"]


def test_merge_fields_none_means_every_field() -> None:
    assert merge_fields(frozenset({"a"}), frozenset({"b"})) == frozenset({"a", "b"})
    assert merge_fields(None, frozenset({"b"})) is None
    assert merge_fields(frozenset({"a"}), None) is None


def test_error_frame_is_a_graphql_response() -> None:
    assert json.loads(error_frame("bad")) == {"data": None, "errors": [{"message": "bad"}]}


def test_decode_request_accepts_a_graphql_request() -> None:
    assert decode_request('{"query": "{ a }", "variables": {"x": 1}}') == {
        "query": "{ a }",
        "variables": {"x": 1},
        "operationName": None,
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "binary frames are not accepted"),
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"variables": {}}', '"query" string'),
        ('{"query": "  "}', '"query" string'),
        ('{"query": "{ a }", "variables": [1]}', '"variables" must be a JSON object'),
        ('{"query": "{ a }", "operationName": 3}', '"operationName" must be a string'),
    ],
)
def test_decode_request_rejects_bad_frames_with_a_reason(text: str | None, message: str) -> None:
    with pytest.raises(FrameError, match=message):
        decode_request(text)
