"""Who may subscribe to a stream, and which events and fields each subscriber receives.

The rules are given on the decorator, in DRF's own terms::

    @model_subscription(
        stream="orders",
        permission_classes=[IsAuthenticated, IsOwner],   # DRF BasePermission classes
        event_filter=lambda user, data: user.is_staff or data["owner"] == user.pk,
        fields_for=lambda user: None if user.is_staff else {"id", "status"},
    )
    class OrderSerializer(serializers.ModelSerializer): ...

* ``has_permission(request, view)`` of every permission class is asked when a subscription is
  made, with a request-like object whose ``user`` is the subscriber (the socket's user).
* ``has_object_permission(request, view, obj)`` of the classes that define it, and
  ``event_filter(user, data)``, are asked for every event and every subscriber before anything is
  sent: ``obj`` is the event's data (the serializer's output) with attribute access, never a
  database row, so the check costs no query. Each is asked once per event and user, however many
  sockets the user has.
* ``fields_for(user)`` names the fields a user may receive (None: all): asking for others is
  refused, and a subscription without a field list gets only those.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from django.db import models
from rest_framework.permissions import BasePermission

from .events import Event
from .exceptions import PermissionDenied as PermissionDenied

EventFilter = Callable[[Any, dict[str, Any]], bool]
FieldsFor = Callable[[Any], Iterable[str] | None]


class Guarded(Protocol):
    """What the checks read of a stream (a ``registry.Registration`` is one)."""

    @property
    def stream(self) -> str:
        """The stream's name, as refusals quote it."""
        ...

    @property
    def model(self) -> type[models.Model]:
        """The serializer's model: permission classes see its default manager's queryset."""
        ...

    @property
    def serializer_class(self) -> type[Any]:
        """The registered serializer class, the view's ``serializer_class``."""
        ...

    @property
    def rules(self) -> Rules:
        """Who may subscribe, and which events and fields each subscriber receives."""
        ...


@dataclass(frozen=True)
class SubscriptionRequest:
    """What DRF permission classes see as ``request``: a read of the stream by ``user``."""

    user: Any
    method: str = "GET"
    auth: Any = None

    @property
    def query_params(self) -> dict[str, str]:
        """Always empty: a subscription has no query string."""
        return {}


class SubscriptionView:
    """What DRF permission classes see as ``view``: the registered serializer's model."""

    def __init__(self, registration: Guarded) -> None:
        self.registration = registration
        self.queryset = registration.model._default_manager.all()
        self.serializer_class = registration.serializer_class
        self.action = "subscribe"

    def get_queryset(self) -> Any:
        """The model's default-manager queryset, one object for the view's lifetime (an event
        check's view lives as long as the process): once a permission class evaluates it, its rows
        stay cached."""
        return self.queryset


class EventObject:
    """An event's data with attribute access, for ``has_object_permission``."""

    def __init__(self, data: dict[str, Any], pk: str) -> None:
        self.__dict__.update(data)
        self.pk = data.get("pk", data.get("id", pk))

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(f"the event data has no field {name!r}")


@dataclass(frozen=True)
class Rules:
    """The permission rules of one stream."""

    permission_classes: tuple[type[BasePermission], ...] = ()
    event_filter: EventFilter | None = None
    fields_for: FieldsFor | None = None

    @property
    def object_permissions(self) -> tuple[type[BasePermission], ...]:
        """The classes that override ``has_object_permission`` (the others always allow)."""
        return tuple(
            cls
            for cls in self.permission_classes
            if getattr(cls, "has_object_permission", None)
            is not BasePermission.has_object_permission
        )

    @property
    def checks_events(self) -> bool:
        """Whether events need a per-user check (an object permission or ``event_filter``)."""
        return bool(self.object_permissions) or self.event_filter is not None


def anonymous() -> Any:
    """A new ``AnonymousUser``: the user of a socket or request that has none."""
    from django.contrib.auth.models import AnonymousUser  # needs the app registry

    return AnonymousUser()


def check_subscribe(registration: Guarded, user: Any, fields: list[str] | None) -> None:
    """Refuse (PermissionDenied) a subscription ``user`` may not make, or fields it may not read."""
    rules = registration.rules
    if rules.permission_classes:  # no view or queryset made for a stream without classes
        request, view = SubscriptionRequest(user), SubscriptionView(registration)
        for cls in rules.permission_classes:
            permission = cls()
            if not permission.has_permission(request, view):  # type: ignore[arg-type]
                reason = getattr(permission, "message", None) or "you may not subscribe to it"
                raise PermissionDenied(
                    f"permission denied for stream {registration.stream!r}: {reason}"
                )
    allowed = allowed_fields(registration, user)
    if allowed is not None and fields is not None:
        forbidden = [f for f in fields if f not in allowed]
        if forbidden:
            raise PermissionDenied(
                f"permission denied for field(s) {', '.join(forbidden)} of stream "
                f"{registration.stream!r}"
            )


def allowed_fields(registration: Guarded, user: Any) -> frozenset[str] | None:
    """The fields ``user`` may receive from the stream (None: every field)."""
    fields_for = registration.rules.fields_for
    if fields_for is None:
        return None
    allowed = fields_for(user)
    return None if allowed is None else frozenset(allowed)


def event_check(registration: Guarded) -> Callable[[Any, Event], bool] | None:
    """The per-event, per-user check of a stream, or None when it has none (the fast path)."""
    rules = registration.rules
    if not rules.checks_events:
        return None
    classes = rules.object_permissions
    event_filter = rules.event_filter
    view = SubscriptionView(registration)

    def allowed(user: Any, event: Event) -> bool:
        if event_filter is not None and not event_filter(user, event.data):
            return False
        if classes:
            request, obj = SubscriptionRequest(user), EventObject(event.data, event.pk)
            for cls in classes:
                if not cls().has_object_permission(request, view, obj):  # type: ignore[arg-type]
                    return False
        return True

    return allowed


def user_key(user: Any) -> str | None:
    """Who owns a socket, as control operations compare it: a user's pk, or None (anonymous)."""
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return str(user.pk)


def request_of(info: Any) -> Any:
    """What a resolver call came through: the socket's consumer, or the HTTP request (None
    when the context has neither)."""
    context = info.context
    return (
        context.get("request") if isinstance(context, dict) else getattr(context, "request", None)
    )


async def request_user(info: Any) -> Any:
    """The user behind a resolver call: a socket's user, or an HTTP request's (middleware)."""
    request = request_of(info)
    auser = getattr(request, "auser", None)
    if auser is not None:  # Django's HttpRequest with AuthenticationMiddleware
        return await auser()
    user = getattr(request, "user", None)
    return user if user is not None else anonymous()
