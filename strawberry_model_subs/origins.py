"""The websocket handshake's ``Origin`` check: the rules of Strawberry's views since 0.335.

Browsers apply no CORS to a websocket handshake: a page on any origin may open a socket to the
site, and the browser sends the user's cookies with it (cross-site WebSocket hijacking). A
handshake is let in when it has no ``Origin`` (not a browser, so no ambient credentials), when
its origin is the host it connects to (or the browser says ``Sec-Fetch-Site: same-origin``), or
when the consumer allows that origin. Strawberry 0.334, the newest release for Python 3.10,
checks no origin: the consumer checks every socket itself, with these rules, on every version.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

# Strawberry's logger: a refusal is logged where it was when Strawberry's own check made it.
logger = logging.getLogger("strawberry.ws")

_DEFAULT_PORTS = {"http": 80, "https": 443}


def _format_host(hostname: str) -> str:
    # urlsplit strips the brackets around an IPv6 address.
    return f"[{hostname}]" if ":" in hostname else hostname


def normalize_origin(origin: str) -> str | None:
    """``origin`` as browsers send it in ``Origin``: scheme and host in lowercase, no default
    port (``"https://Example.com:443"`` is ``"https://example.com"``); None for what is not an
    origin (``"null"``, ``"https://["``)."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    if not parts.scheme or not parts.hostname:
        return None
    scheme = parts.scheme.lower()
    host = _format_host(parts.hostname)
    if port is not None and port != _DEFAULT_PORTS.get(scheme):
        host = f"{host}:{port}"
    return f"{scheme}://{host}"


def _has_more_than_an_origin(url: str) -> bool:
    parts = urlsplit(url.strip())
    return bool(parts.path not in ("", "/") or parts.query or parts.fragment or parts.username)


def normalize_allowed_origins(allowed_origins: Iterable[str]) -> frozenset[str]:
    """The consumer's ``allowed_origins``, checked and normalized (``"*"``: any origin).

    Raises:
        TypeError: ``allowed_origins`` is one string, not a sequence of them.
        ValueError: an entry is not ``"*"`` or an origin (scheme, host, optional port, no path).
    """
    if isinstance(allowed_origins, str):
        raise TypeError(
            "allowed_origins must be a sequence of origins, not a string. "
            f"Did you mean [{allowed_origins!r}]?"
        )
    normalized: set[str] = set()
    for origin in allowed_origins:
        if origin == "*":
            normalized.add(origin)
            continue
        normalized_origin = normalize_origin(origin)
        if normalized_origin is None or _has_more_than_an_origin(origin):
            raise ValueError(
                f"Invalid origin {origin!r} in allowed_origins. Expected '*' or "
                "an origin like 'https://example.com' (scheme, host and optional "
                "port, without a path)."
            )
        normalized.add(normalized_origin)
    return frozenset(normalized)


def is_same_origin(origin: str, host: str | None) -> bool:
    """Whether ``origin`` names the host the handshake was sent to (``Host``).

    Host and port only, so TLS ended at a proxy (an https page reaching the app over http) is
    still the same origin; a port left out is the default port of the origin's scheme
    (``Host: example.com:443`` matches ``Origin: https://example.com``).
    """
    if not host:
        return False
    try:
        origin_parts = urlsplit(origin)
        host_parts = urlsplit(f"//{host.strip()}")
        default_port = _DEFAULT_PORTS.get(origin_parts.scheme.lower())
        origin_port = origin_parts.port or default_port
        host_port = host_parts.port or default_port
    except ValueError:
        return False
    return (
        origin_parts.hostname is not None
        and origin_parts.hostname == host_parts.hostname
        and origin_port == host_port
    )


def handshake_headers(scope: Mapping[str, Any]) -> dict[str, str]:
    """An ASGI websocket scope's headers by lowercase name."""
    return {
        name.decode("latin1").lower(): value.decode("latin1") for name, value in scope["headers"]
    }


def origin_allowed(headers: Mapping[str, str], cross_origin_allowed: Callable[[str], bool]) -> bool:
    """Whether a handshake with ``headers`` (by lowercase name) may open a socket;
    ``cross_origin_allowed(origin)`` decides for a browser on another origin (logged if not)."""
    origin = headers.get("origin")
    if origin is None:
        return True
    host = headers.get("host")
    if headers.get("sec-fetch-site") == "same-origin" or is_same_origin(origin, host):
        return True
    if cross_origin_allowed(origin):
        return True
    logger.warning(
        "Rejected WebSocket connection from origin %r to host %r. If pages "
        "on this origin should be able to connect, add it to "
        "`allowed_origins`.",
        origin,
        host,
    )
    return False
