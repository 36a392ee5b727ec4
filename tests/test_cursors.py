"""Cursors: encoded and parsed back, anything else refused as CURSOR_INVALID."""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strawberry_model_subs.cursors import Cursor, new_epoch, parse_cursor
from strawberry_model_subs.exceptions import ControlError, CursorError, CursorInvalid

offsets = st.tuples(st.integers(0, 2**63), st.integers(0, 2**63))


@given(offsets)
def test_a_cursor_parses_back_to_itself(offset: tuple[int, int]) -> None:
    cursor = Cursor(new_epoch(), offset)
    assert parse_cursor(cursor.encode()) == cursor


def test_a_later_epoch_sorts_after_an_earlier_one() -> None:
    first = new_epoch()
    while int(time.time() * 1000) <= int(first[:13]):  # the next millisecond, at most 1 ms off
        pass
    assert new_epoch() > first


@pytest.mark.parametrize(
    "text",
    [
        "",
        "x",
        "1764672000000-9f3a1c2b",
        "1764672000000-9f3a1c2b:",
        "1764672000000-9f3a1c2b:12",
        "1764672000000-9F3A1C2B:1-0",
        "176467200000-9f3a1c2b:1-0",
        "1764672000000-9f3a1c2b:1-0 ",
        "1764672000000-9f3a1c2b:-1-0",
        "1764672000000-9f3a1c2b:1-0" + "0" * 60,
        None,
        12,
        ["1764672000000-9f3a1c2b:1-0"],
    ],
)
def test_anything_else_is_cursor_invalid(text: object) -> None:
    with pytest.raises(CursorInvalid) as raised:
        parse_cursor(text)
    assert str(raised.value).startswith("CURSOR_INVALID: ")
    assert raised.value.code == "CURSOR_INVALID"
    # A cursor error is a control error: the stream protocol answers it with ok: false.
    assert isinstance(raised.value, CursorError)
    assert isinstance(raised.value, ControlError)
