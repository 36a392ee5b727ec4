from __future__ import annotations

import pytest
from django.core.checks import Error, Warning
from django.test import override_settings

from strawberry_model_subs.checks import check_setup

REDIS = "channels_redis.core.RedisChannelLayer"


def ids(messages: list) -> list[str]:
    return [m.id for m in messages]


def test_the_test_settings_pass() -> None:
    assert check_setup() == []


@override_settings(CHANNEL_LAYERS={})
def test_a_missing_layer_is_an_error() -> None:
    (message,) = check_setup()
    assert isinstance(message, Error)
    assert message.id == "strawberry_model_subs.E002"
    assert "no channel layer 'default'" in message.msg


@override_settings(STRAWBERRY_MODEL_SUBS={"CHANEL_LAYER": "x"})
def test_a_misspelt_setting_is_an_error() -> None:
    (message,) = check_setup()
    assert message.id == "strawberry_model_subs.E001"
    assert "CHANEL_LAYER" in message.msg


@override_settings(CHANNEL_LAYERS={"default": {"BACKEND": "myproject.layers.Custom"}})
def test_an_unknown_backend_is_a_warning() -> None:
    (message,) = check_setup()
    assert isinstance(message, Warning)
    assert message.id == "strawberry_model_subs.W001"


@pytest.mark.parametrize(
    ("hosts", "expected"),
    [
        (["redis://h:6379"], ["strawberry_model_subs.W002", "strawberry_model_subs.W003"]),
        (
            [{"address": "redis://h:6379"}],
            ["strawberry_model_subs.W002", "strawberry_model_subs.W003"],
        ),
        (
            [{"address": "redis://h:6379", "max_connections": 500}],
            ["strawberry_model_subs.W003"],
        ),
        (
            [{"address": "redis://h:6379", "max_connections": 500, "socket_timeout": 5}],
            ["strawberry_model_subs.W003"],
        ),
        ([{"address": "redis://h:6379", "max_connections": 500, "socket_timeout": 30}], []),
        ([{"address": "redis://h:6379", "max_connections": 500, "socket_timeout": None}], []),
    ],
)
def test_redis_hosts_without_max_connections_or_socket_timeout_are_warnings(
    hosts: list[object], expected: list[str]
) -> None:
    layers = {"default": {"BACKEND": REDIS, "CONFIG": {"hosts": hosts}}}
    with override_settings(CHANNEL_LAYERS=layers):
        assert ids(check_setup()) == expected
