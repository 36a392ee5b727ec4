from __future__ import annotations

from django.db import models


class Item(models.Model):
    """The tiny model whose changes every contender pushes: ``seq`` orders the events."""

    name = models.TextField(default="")
    seq = models.IntegerField(default=0)

    class Meta:
        app_label = "benchapp"

    def __str__(self) -> str:
        return f"item {self.pk} #{self.seq}"
