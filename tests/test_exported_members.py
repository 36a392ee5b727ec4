"""The package's public API: ``__all__`` is sorted, complete, importable and pinned."""

from __future__ import annotations
import __future__

import importlib
from types import ModuleType

import strawberry_model_subs

PUBLIC_API = [
    "FIELD_TYPES",
    "Action",
    "Authenticated",
    "BigInt",
    "ConfigurationError",
    "ConnectionRefresh",
    "ControlError",
    "CursorError",
    "CursorExpired",
    "CursorInvalid",
    "Event",
    "FilterError",
    "FrameError",
    "InvalidNotifyError",
    "Mapped",
    "ModelSubsError",
    "NotRegisteredError",
    "NotifyingManager",
    "NotifyingQuerySet",
    "Operation",
    "PermissionDenied",
    "RegistrationError",
    "Rejected",
    "SubscriptionResult",
    "SyncOnlyError",
    "SyncResolvers",
    "UnsupportedFieldError",
    "UsageError",
    "acurrent_cursor",
    "anotify",
    "arevoke",
    "current_cursor",
    "cursor_field",
    "flush_events",
    "model_subscription",
    "notify",
    "refresh_connection_field",
    "revoke",
    "subscription_type",
]


def isort_style(name: str) -> tuple[int, str]:
    """Ruff's order for ``__all__`` (RUF022): constants, then classes, then the rest."""
    return (0 if name.isupper() else 1 if name[:1].isupper() else 2, name)


def test_all_is_sorted() -> None:
    assert strawberry_model_subs.__all__ == sorted(strawberry_model_subs.__all__, key=isort_style)


def test_all_has_no_duplicates() -> None:
    assert len(set(strawberry_model_subs.__all__)) == len(strawberry_model_subs.__all__)


def test_every_name_in_all_is_importable_from_the_package() -> None:
    module = importlib.import_module("strawberry_model_subs")
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert missing == []
    namespace: dict[str, object] = {}
    exec(f"from strawberry_model_subs import {', '.join(module.__all__)}", namespace)
    assert all(namespace[name] is getattr(module, name) for name in module.__all__)


def test_all_lists_every_public_member_of_the_package() -> None:
    public = sorted(
        name
        for name, value in vars(strawberry_model_subs).items()
        if not name.startswith("_")
        and not isinstance(value, ModuleType)  # submodules imported as a side effect
        and value is not __future__.annotations
    )
    assert sorted(strawberry_model_subs.__all__) == public


def test_public_api_is_pinned() -> None:
    assert strawberry_model_subs.__all__ == PUBLIC_API
