from __future__ import annotations

import io

import pytest
from django.core.checks import Error, Warning
from django.core.management import call_command
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


# Django 6 runs the model checks against every database (SQLite is asked whether it has JSON).
@pytest.mark.django_db
@override_settings(CHANNEL_LAYERS={"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}})
def test_check_deploy_warns_of_the_in_memory_layer() -> None:
    out = io.StringIO()
    call_command("check", deploy=True, stdout=out, stderr=out)
    assert "strawberry_model_subs.W004" in out.getvalue()
    assert "InMemoryChannelLayer, which carries events within one process" in out.getvalue()
    # A plain check (every runserver) stays quiet about it: one process is the development case.
    out = io.StringIO()
    call_command("check", stdout=out, stderr=out)
    assert "W004" not in out.getvalue()


@override_settings(
    CHANNEL_LAYERS={
        "default": {
            "BACKEND": REDIS,
            "CONFIG": {
                "hosts": [{"address": "redis://h", "max_connections": 9, "socket_timeout": 30}]
            },
        }
    }
)
@pytest.mark.django_db
def test_check_deploy_is_quiet_on_redis() -> None:
    out = io.StringIO()
    call_command("check", deploy=True, stdout=out, stderr=out)
    assert "strawberry_model_subs" not in out.getvalue()
