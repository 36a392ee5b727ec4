"""The field-type table under its earlier name: ``strawberry_model_subs.types.FIELD_TYPES``.

Kept so that projects that map their own field classes keep working; the table and the type
generation live in :mod:`strawberry_model_subs.typegen`, and ``FIELD_TYPES`` and ``Mapped`` are
exported by the package itself (``strawberry_model_subs.FIELD_TYPES``).
"""

from __future__ import annotations

from .typegen import FIELD_TYPES, Mapped

__all__ = ["FIELD_TYPES", "Mapped"]
