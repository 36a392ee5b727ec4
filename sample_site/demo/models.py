"""A demo model with a field of each kind the type mapping shows off."""

from __future__ import annotations

from typing import ClassVar

from django.db import models
from django.utils import timezone

# The type checker runs with the test settings, which do not install this app: django-stubs'
# plugin then adds no default manager, so each model declares the one Django makes (a bare
# annotation, nothing at run time).


class Maker(models.Model):
    objects: ClassVar[models.Manager[Maker]]

    name = models.CharField(max_length=100, unique=True)
    country = models.CharField(max_length=2, default="NL")

    def __str__(self) -> str:
        return self.name


class Gadget(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        ON_SALE = "on_sale", "On sale"
        RETIRED = "retired", "Retired"

    objects: ClassVar[models.Manager[Gadget]]

    name = models.CharField(max_length=100)
    price = models.DecimalField(max_digits=8, decimal_places=2)
    released = models.DateTimeField(default=timezone.now)
    specs = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    maker = models.ForeignKey(Maker, on_delete=models.CASCADE, related_name="gadgets")

    def __str__(self) -> str:
        return self.name
