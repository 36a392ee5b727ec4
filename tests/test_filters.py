"""``where`` filters: what the generated ``{Name}Filter`` holds, how each lookup of each field
type matches an event's data, and filtered subscriptions on both protocols (checked when made,
refused on a field the user may not read, replayed events filtered as live ones)."""

from __future__ import annotations

import datetime
import decimal
import json
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import transaction
from graphql import build_schema

from strawberry_model_subs import Action, Event, FilterError
from strawberry_model_subs.filters import compile_where
from strawberry_model_subs.hub import Fields, Hub
from strawberry_model_subs.publisher import flush_events
from strawberry_model_subs.registry import registration_for_stream
from strawberry_model_subs.testing import StreamClient, TypedClient
from tests.conftest import NO_LAYER, make_user
from tests.testapp.asgi import application
from tests.testapp.models import ApiToken, Category, Note, Product
from tests.testapp.schema import schema as testapp_schema

PRODUCTS = registration_for_stream("products")
assert PRODUCTS is not None
FIELDS = PRODUCTS.filter_fields

#: A product as its serializer renders it.
PRODUCT = {
    "id": 7,
    "name": "Green Tea",
    "price": "9.50",
    "in_stock": True,
    "category": 3,
    "created": "2026-12-01T10:00:00Z",
    "tags": [],
    "status": "draft",
}


def matches(spec: dict[str, Any], **changes: Any) -> bool:
    return compile_where(spec, FIELDS).matches({**PRODUCT, **changes})


# -- the generated input --------------------------------------------------------------------------


def test_the_filter_has_the_column_backed_fields_with_lookups_for_their_type() -> None:
    sdl = build_schema(testapp_schema.as_str())
    product_filter = sdl.get_type("ProductFilter")
    assert product_filter is not None
    fields = {name: str(f.type) for name, f in product_filter.fields.items()}  # type: ignore[attr-defined]
    assert fields == {
        "id": "BigIntComparisonFilterLookup",
        "name": "StrFilterLookup",
        "price": "DecimalComparisonFilterLookup",
        "inStock": "BoolBaseFilterLookup",
        "created": "DatetimeComparisonFilterLookup",
        "status": "ProductStatusChoiceBaseFilterLookup",
        "category": "IDBaseFilterLookup",
        "AND": "ProductFilter",
        "OR": "ProductFilter",
        "NOT": "ProductFilter",
    }  # tags (a JSONField) has no lookups: not filterable
    text = sdl.get_type("StrFilterLookup")
    assert {"exact", "iExact", "inList", "isNull", "contains", "iContains", "startsWith"} <= set(
        text.fields  # type: ignore[attr-defined]
    )
    ordered = sdl.get_type("DecimalComparisonFilterLookup")
    assert set(ordered.fields) == {  # type: ignore[attr-defined]
        *("exact", "isNull", "inList", "gt", "gte", "lt", "lte", "range"),
    }


# -- evaluation -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"name": {"exact": "Green Tea"}}, True),
        ({"name": {"exact": "green tea"}}, False),
        ({"name": {"i_exact": "green TEA"}}, True),
        ({"name": {"contains": "Tea"}}, True),
        ({"name": {"contains": "tea"}}, False),
        ({"name": {"i_contains": "TEA"}}, True),
        ({"name": {"starts_with": "Green"}}, True),
        ({"name": {"i_starts_with": "green"}}, True),
        ({"name": {"ends_with": "Tea"}}, True),
        ({"name": {"i_ends_with": "TEA"}}, True),
        ({"name": {"in_list": ["Black Tea", "Green Tea"]}}, True),
        ({"name": {"in_list": ["Black Tea"]}}, False),
        ({"price": {"lt": "10"}}, True),
        ({"price": {"lt": "9.50"}}, False),
        ({"price": {"lte": "9.5"}}, True),
        ({"price": {"gt": "9.49"}}, True),
        ({"price": {"gte": "9.51"}}, False),
        ({"price": {"range": ["9", "10"]}}, True),
        ({"price": {"range": [None, "9"]}}, False),
        ({"price": {"exact": "9.5"}}, True),
        ({"id": {"in_list": [1, 7]}}, True),
        ({"id": {"gt": 7}}, False),
        ({"in_stock": {"exact": True}}, True),
        ({"in_stock": {"exact": False}}, False),
        ({"status": {"exact": "draft"}}, True),
        ({"status": {"in_list": ["published"]}}, False),
        ({"category": {"exact": "3"}}, True),
        ({"category": {"in_list": ["1", "2"]}}, False),
        ({"created": {"gte": "2026-12-01T00:00:00+00:00"}}, True),
        ({"created": {"lt": "2026-12-01T10:00:00+00:00"}}, False),
        ({"created": {"range": ["2026-11-30T00:00:00Z", "2026-12-02T00:00:00Z"]}}, True),
        ({"created": {"exact": "2026-12-01T11:00:00+01:00"}}, True),
        ({"category": {"is_null": False}}, True),
        ({"category": {"is_null": True}}, False),
        # Fields of one object hold together; AND and NOT add to them; OR is the alternative.
        ({"name": {"contains": "Tea"}, "price": {"lt": "5"}}, False),
        ({"name": {"contains": "Tea"}, "AND": {"price": {"lt": "10"}}}, True),
        ({"name": {"contains": "Tea"}, "NOT": {"status": {"exact": "draft"}}}, False),
        ({"price": {"lt": "5"}, "OR": {"name": {"starts_with": "Green"}}}, True),
        ({"price": {"lt": "5"}, "OR": {"name": {"starts_with": "Black"}}}, False),
        ({}, True),
    ],
)
def test_each_lookup_matches_as_django_would(spec: dict[str, Any], expected: bool) -> None:
    assert matches(spec) is expected


def test_a_null_value_matches_only_is_null_and_not() -> None:
    assert matches({"category": {"is_null": True}}, category=None)
    assert not matches({"category": {"exact": "3"}}, category=None)
    assert not matches({"category": {"in_list": ["3"]}}, category=None)
    assert matches({"NOT": {"category": {"exact": "3"}}}, category=None)


def test_equal_filters_are_one_whatever_their_order() -> None:
    one = compile_where({"name": {"contains": "Tea"}, "price": {"lt": "10"}}, FIELDS)
    other = compile_where({"price": {"lt": "10.00"}, "name": {"contains": "Tea"}}, FIELDS)
    assert one == other
    assert hash(one) == hash(other)
    assert one != compile_where({"price": {"lt": "11"}}, FIELDS)
    assert one.fields == {"name", "price"}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"name": {"regex": "^G"}}, "where: name.regex is not supported"),
        ({"name": {"i_regex": "^g"}}, "where: name.iRegex is not supported"),
        ({"price": {"lt": "cheap"}}, "where: price.lt: 'cheap' is not a value of the field"),
        ({"name": {"in_list": ["a", None]}}, "where: name.inList holds null"),
        ({"tags": {"exact": []}}, "where: 'tags' is not a filterable field"),
    ],
)
def test_a_filter_it_cannot_run_is_refused_naming_the_field(
    spec: dict[str, Any], message: str
) -> None:
    with pytest.raises(FilterError) as caught:
        compile_where(spec, FIELDS)
    assert str(caught.value).startswith(message)


# -- typed subscriptions --------------------------------------------------------------------------

CHEAP = """
subscription ($where: ProductFilter) {
  productChanged(where: $where) { action data { name price } }
}
"""

pytestmark = pytest.mark.django_db(transaction=True)


async def names_until(client: TypedClient, op: str, last: str) -> list[str]:
    names: list[str] = []
    while not names or names[-1] != last:
        payload = await client.receive_next(op)
        assert not payload.get("errors"), payload
        names.append(payload["data"]["productChanged"]["data"]["name"])
    return names


async def test_a_typed_subscription_gets_only_the_objects_its_filter_matches() -> None:
    where = {"price": {"lt": "10"}, "name": {"iStartsWith": "green"}}
    async with TypedClient(application) as client:
        op = await client.subscribe(CHEAP, {"where": where}, stream="products")
        await Product.objects.acreate(name="Green Tea", price=decimal.Decimal("4.00"))
        await Product.objects.acreate(name="Green Gold", price=decimal.Decimal("40.00"))
        await Product.objects.acreate(name="Black Tea", price=decimal.Decimal("3.00"))
        await Product.objects.acreate(name="green mint", price=decimal.Decimal("9.99"))
        assert await names_until(client, op, "green mint") == ["Green Tea", "green mint"]


async def test_subscribers_with_equal_filters_and_without_one_each_get_theirs() -> None:
    async with (
        TypedClient(application) as cheap,
        TypedClient(application) as also_cheap,
        TypedClient(application) as everything,
    ):
        a = await cheap.subscribe(CHEAP, {"where": {"price": {"lt": "10"}}}, stream="products")
        b = await also_cheap.subscribe(
            CHEAP, {"where": {"price": {"lte": "9.99"}}}, stream="products"
        )
        c = await everything.subscribe(CHEAP, {}, stream="products")
        await Product.objects.acreate(name="dear", price=decimal.Decimal("50"))
        await Product.objects.acreate(name="cheap", price=decimal.Decimal("5"))
        assert await names_until(cheap, a, "cheap") == ["cheap"]
        assert await names_until(also_cheap, b, "cheap") == ["cheap"]
        assert await names_until(everything, c, "cheap") == ["dear", "cheap"]


async def test_a_filter_on_a_value_of_the_wrong_type_is_a_validation_error() -> None:
    async with TypedClient(application) as client:
        op = await client.subscribe(CHEAP, {"where": {"inStock": {"exact": "yes"}}})
        (error,) = await client.receive_error(op)
    assert "inStock" in error["message"]


async def test_a_regex_lookup_is_refused_with_a_graphql_error() -> None:
    async with TypedClient(application) as client:
        op = await client.subscribe(CHEAP, {"where": {"name": {"regex": "^(a+)+$"}}})
        (error,) = await client.receive_error(op)
    assert error["message"].startswith("where: name.regex is not supported")


NOTES = """
subscription ($where: NoteFilter) { noteChanged(where: $where) { data { text } } }
"""


async def test_filtering_on_a_field_the_user_may_not_read_is_refused() -> None:
    alice = await make_user("alice")
    token = await ApiToken.objects.acreate(key="alice-token", user=alice)
    boss = await make_user("boss", staff=True)
    boss_token = await ApiToken.objects.acreate(key="boss-token", user=boss)
    where = {"secret": {"exact": "x"}}
    async with TypedClient(application, connection_params={"token": token.key}) as client:
        op = await client.subscribe(NOTES, {"where": where})
        (error,) = await client.receive_error(op)
    assert error["message"] == "where: permission denied: you may not filter on secret"
    async with TypedClient(application, connection_params={"token": boss_token.key}) as client:
        op = await client.subscribe(NOTES, {"where": where}, stream="notes")
        await Note.objects.acreate(owner=alice, text="not it", secret="y")
        await Note.objects.acreate(owner=alice, text="it", secret="x")
        payload = await client.receive_next(op)
    assert payload["data"]["noteChanged"]["data"]["text"] == "it"


async def test_a_resumed_subscription_replays_only_what_its_filter_matches() -> None:
    async with TypedClient(application) as client:
        op = await client.subscribe(
            'subscription { productChanged(after: "") { cursor data { name } } }',
            stream="products",
        )
        await Product.objects.acreate(name="start", price=decimal.Decimal("1"))
        start = (await client.receive_next(op))["data"]["productChanged"]["cursor"]
    await Product.objects.acreate(name="missed, cheap", price=decimal.Decimal("2"))
    await Product.objects.acreate(name="missed, dear", price=decimal.Decimal("200"))
    assert await sync_to_async(flush_events)(5.0)
    resume = """
    subscription ($after: String, $where: ProductFilter) {
      productChanged(after: $after, where: $where) { action data { name price } }
    }
    """
    where = {"price": {"lt": "10"}}
    async with TypedClient(application) as client:
        op = await client.subscribe(resume, {"after": start, "where": where}, stream="products")
        await Product.objects.acreate(name="live, cheap", price=decimal.Decimal("3"))
        assert await names_until(client, op, "live, cheap") == ["missed, cheap", "live, cheap"]


# -- the stream protocol --------------------------------------------------------------------------


async def test_a_stream_subscription_with_where_gets_only_matching_frames() -> None:
    async with StreamClient(application) as client:
        where = {"category": {"isNull": False}}
        result = await client.subscribe("products", "CREATE", fields=["name"], where=where)
        assert result["ok"], result
        tea = await Category.objects.acreate(name="tea")
        await Product.objects.acreate(name="loose", price=decimal.Decimal("1"))
        await Product.objects.acreate(name="filed", price=decimal.Decimal("1"), category=tea)
        frame = await client.receive_event()
        assert frame == {
            "stream": "products",
            "payload": {
                "action": "create",
                "model": "testapp.product",
                "data": {"name": "filed"},
                "moved": False,
            },
        }
        result = await client.unsubscribe("products", "CREATE", where=where)
        assert result["ok"], result
        await Product.objects.acreate(name="after", price=decimal.Decimal("1"), category=tea)
        await client.assert_no_frame()


async def test_a_stream_filter_it_cannot_run_is_ok_false_naming_the_field() -> None:
    async with StreamClient(application) as client:
        result = await client.subscribe("products", where={"name": {"iRegex": "x"}})
    assert result["ok"] is False
    assert result["error"].startswith("where: name.iRegex is not supported")


async def test_a_naive_datetime_in_a_filter_is_taken_in_the_current_time_zone() -> None:
    day = datetime.datetime(2026, 12, 1, 12, 0)  # naive: UTC, the test site's TIME_ZONE
    spec = {"created": {"gte": day.isoformat()}}
    assert matches(spec, created="2026-12-01T12:00:00Z")
    assert not matches(spec, created="2026-12-01T11:59:59Z")


# -- enter and leave ------------------------------------------------------------------------------

MOVES = """
subscription ($where: ProductFilter) {
  productChanged(where: $where) { action moved data { name price } }
}
"""


async def next_move(client: TypedClient, op: str) -> tuple[str, bool, str]:
    payload = await client.receive_next(op)
    assert not payload.get("errors"), payload
    change = payload["data"]["productChanged"]
    return change["action"], change["moved"], change["data"]["name"]


async def test_an_object_entering_or_leaving_the_filter_is_a_create_or_delete_marked_moved() -> (
    None
):
    async with TypedClient(application) as client:
        op = await client.subscribe(MOVES, {"where": {"price": {"lt": "10"}}}, stream="products")
        tea = await Product.objects.acreate(name="tea", price=decimal.Decimal("4"))
        assert await next_move(client, op) == ("CREATE", False, "tea")
        tea = await Product.objects.aget(pk=tea.pk)  # loaded, as a view or a form does
        tea.price = decimal.Decimal("40")
        await tea.asave()
        assert await next_move(client, op) == ("DELETE", True, "tea")
        tea.name = "dear tea"  # out of the filter before and after: not sent
        await tea.asave()
        tea.price = decimal.Decimal("5")
        await tea.asave()
        assert await next_move(client, op) == ("CREATE", True, "dear tea")
        tea.price = decimal.Decimal("4.5")
        await tea.asave()
        assert await next_move(client, op) == ("UPDATE", False, "dear tea")
        await Product.objects.acreate(name="gold", price=decimal.Decimal("400"))
        await tea.adelete()
        assert await next_move(client, op) == ("DELETE", False, "dear tea")
        await client.assert_no_message()


async def test_a_stream_subscription_with_where_sees_moves_in_its_frames() -> None:
    async with StreamClient(application) as client:
        where = {"inStock": {"exact": True}}
        assert (await client.subscribe("products", fields=["name"], where=where))["ok"]
        box = await Product.objects.acreate(name="box", price=decimal.Decimal("1"))
        created = await client.receive_event()
        box.in_stock = False
        await box.asave()
        left = await client.receive_event()
    assert (created["payload"]["action"], created["payload"]["moved"]) == ("create", False)
    assert left["payload"] == {
        "action": "delete",
        "model": "testapp.product",
        "data": {"name": "box"},
        "moved": True,
    }


async def test_changes_in_one_transaction_compare_with_the_object_before_the_first() -> None:
    box = await Product.objects.acreate(name="box", price=decimal.Decimal("50"))
    async with TypedClient(application) as client:
        op = await client.subscribe(MOVES, {"where": {"price": {"lt": "10"}}}, stream="products")

        def reprice() -> None:
            with transaction.atomic():
                loaded = Product.objects.get(pk=box.pk)
                loaded.price = decimal.Decimal("5")
                loaded.save()
                loaded.name = "cheap box"
                loaded.save()

        await sync_to_async(reprice)()
        assert await next_move(client, op) == ("CREATE", True, "cheap box")


# -- the index ------------------------------------------------------------------------------------


class Moves:
    user: Any = None

    def __init__(self) -> None:
        self.received: list[tuple[str, bool]] = []

    def push(self, event: Event, fields: Fields) -> None:
        self.received.append((event.action.value, event.moved))


def product_event(action: Action, category: int | None, before: dict[str, Any] | None) -> Event:
    data = {**PRODUCT, "category": category}
    return Event("products", action, "testapp.product", "7", data, json.dumps(data), before=before)


def test_an_exact_or_in_list_lookup_that_must_hold_indexes_the_filter() -> None:
    assert compile_where({"category": {"exact": "3"}}, FIELDS).index == ("category", {"3"})
    both = compile_where({"category": {"in_list": ["1", "2"], "exact": "2"}}, FIELDS)
    assert both.index == ("category", {"2"})
    nested = compile_where({"price": {"lt": "9"}, "AND": {"status": {"exact": "draft"}}}, FIELDS)
    assert nested.index == ("status", {"draft"})
    for spec in (
        {"price": {"lt": "9"}},  # no value needed
        {"category": {"exact": "3"}, "OR": {"price": {"lt": "9"}}},  # OR: not needed
        {"NOT": {"category": {"exact": "3"}}},
    ):
        assert compile_where(spec, FIELDS).index is None, spec


def test_an_event_is_tested_only_against_the_filters_of_its_values() -> None:
    hub = Hub(layer=NO_LAYER)
    sinks = {}
    for category in range(1000):
        sinks[category] = sink = Moves()
        where = compile_where({"category": {"exact": str(category)}}, FIELDS)
        hub.add(sink, "products", Action.ALL_ACTIONS, None, None, where)
    cheap = Moves()
    hub.add(cheap, "products", Action.ALL_ACTIONS, None, None, compile_where(CHEAPER, FIELDS))
    moved = product_event(Action.UPDATE, 20, before={"category": 10})
    assert (
        len(hub.filter_index["products"].candidates(moved, FIELDS)) == 3
    )  # 10, 20, and price < 10
    assert hub.dispatch(moved) == 3
    assert sinks[10].received == [("delete", True)]
    assert sinks[20].received == [("create", True)]
    assert cheap.received == [("update", False)]
    assert all(not sinks[c].received for c in sinks if c not in (10, 20))
    other_shape = compile_where({"category": {"in_list": ["20"]}}, FIELDS)
    assert not hub.discard(sinks[20], "products", Action.ALL_ACTIONS, None, other_shape)
    assert hub.dispatch(product_event(Action.CREATE, 20, None)) == 2  # a filter is its shape
    for category, sink in sinks.items():
        where = compile_where({"category": {"exact": str(category)}}, FIELDS)
        assert hub.discard(sink, "products", Action.ALL_ACTIONS, None, where)
    assert hub.discard(cheap, "products", Action.ALL_ACTIONS, None, compile_where(CHEAPER, FIELDS))
    assert hub.filter_index == {}
    assert hub.filtered == {}


CHEAPER = {"price": {"lt": "10"}}


# -- rights that change ---------------------------------------------------------------------------

FEED = "subscription { noteFeedChanged { action moved data { text shared } } }"
OWN_NOTES = "subscription { noteChanged { action moved data { text owner } } }"


async def next_note(client: TypedClient, op: str, field: str) -> tuple[str, bool, str]:
    payload = await client.receive_next(op)
    assert not payload.get("errors"), payload
    change = payload["data"][field]
    return change["action"], change["moved"], change["data"]["text"]


async def test_an_update_hiding_an_object_from_a_user_is_a_leave_and_showing_it_an_enter() -> None:
    alice = await make_user("alice")
    async with TypedClient(application) as anonymous:
        op = await anonymous.subscribe(FEED, stream="note-feed")
        note = await Note.objects.acreate(owner=alice, text="public", shared=True)
        assert await next_note(anonymous, op, "noteFeedChanged") == ("CREATE", False, "public")
        note.shared, note.text = False, "now private"
        await note.asave()
        # A leave, shown as the user could last see it: not the new, private text.
        assert await next_note(anonymous, op, "noteFeedChanged") == ("DELETE", True, "public")
        note.text = "still private"
        await note.asave()
        note.shared = True
        await note.asave()
        assert await next_note(anonymous, op, "noteFeedChanged") == (
            "CREATE",
            True,
            "still private",
        )
        await anonymous.assert_no_message()


async def test_a_change_of_owner_moves_the_object_between_the_owners_subscriptions() -> None:
    alice, bob = await make_user("alice"), await make_user("bob")
    alice_token = await ApiToken.objects.acreate(key="alice-token", user=alice)
    bob_token = await ApiToken.objects.acreate(key="bob-token", user=bob)
    async with (
        TypedClient(application, connection_params={"token": alice_token.key}) as alices,
        TypedClient(application, connection_params={"token": bob_token.key}) as bobs,
    ):
        a = await alices.subscribe(OWN_NOTES, stream="notes")
        b = await bobs.subscribe(OWN_NOTES, stream="notes")
        note = await Note.objects.acreate(owner=alice, text="handed over")
        assert await next_note(alices, a, "noteChanged") == ("CREATE", False, "handed over")
        note.owner = bob
        await note.asave()
        assert await next_note(alices, a, "noteChanged") == ("DELETE", True, "handed over")
        assert await next_note(bobs, b, "noteChanged") == ("CREATE", True, "handed over")
        await alices.assert_no_message()
        await bobs.assert_no_message()
