"""``exceptions``: every error class of the package lives there, in the hierarchy its docstring
draws, and keeps the built-in bases callers may already catch."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import strawberry_model_subs
from strawberry_model_subs import exceptions

HIERARCHY = {
    "RegistrationError": "ModelSubsError",
    "UnsupportedFieldError": "RegistrationError",
    "ConfigurationError": "ModelSubsError",
    "UsageError": "ModelSubsError",
    "NotRegisteredError": "UsageError",
    "InvalidNotifyError": "UsageError",
    "SyncOnlyError": "UsageError",
    "Rejected": "ModelSubsError",
    "ControlError": "ModelSubsError",
    "PermissionDenied": "ControlError",
    "FilterError": "ControlError",
    "CursorError": "ControlError",
    "CursorExpired": "CursorError",
    "CursorInvalid": "CursorError",
    "FrameError": "ModelSubsError",
}


def public_errors() -> dict[str, type[BaseException]]:
    return {
        name: value
        for name, value in vars(exceptions).items()
        if inspect.isclass(value) and issubclass(value, BaseException)
    }


def test_every_error_class_of_the_package_is_defined_in_exceptions() -> None:
    elsewhere = []
    for info in pkgutil.iter_modules(strawberry_model_subs.__path__):
        module = importlib.import_module(f"strawberry_model_subs.{info.name}")
        for name, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == module.__name__
                and not name.startswith("_")
                and module is not exceptions
            ):
                elsewhere.append(f"{module.__name__}.{name}")
    assert elsewhere == []


def test_the_hierarchy_is_the_one_the_docstring_draws() -> None:
    errors = public_errors()
    assert set(errors) == {"ModelSubsError", *HIERARCHY}
    for name, parent in HIERARCHY.items():
        assert errors[name].__mro__[1] is errors[parent], name
        assert f"{name} " in exceptions.__doc__ or f"{name}\n" in exceptions.__doc__, name


@pytest.mark.parametrize(
    ("name", "builtin"),
    [
        ("NotRegisteredError", ValueError),
        ("InvalidNotifyError", ValueError),
        ("InvalidNotifyError", TypeError),
        ("SyncOnlyError", RuntimeError),
        ("FrameError", ValueError),
    ],
)
def test_errors_keep_the_builtin_base_they_were_raised_as(
    name: str, builtin: type[Exception]
) -> None:
    assert issubclass(public_errors()[name], builtin)


def test_every_error_is_exported_by_the_package() -> None:
    assert set(public_errors()) <= set(strawberry_model_subs.__all__)
