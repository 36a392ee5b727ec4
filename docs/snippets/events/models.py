# shop/models.py: add, a model whose bulk writes send events
from django.db import models
from strawberry_model_subs import NotifyingManager


class Coupon(models.Model):
    code = models.CharField(max_length=20)
    active = models.BooleanField(default=True)

    objects = NotifyingManager()  # or NotifyingQuerySet.as_manager()
