# shop/pricing.py: writes that send no signal, announced by hand
from django.db import transaction
from strawberry_model_subs import Action, anotify, notify

from .models import Product


def discount_cheap_products():
    cheap = Product.objects.filter(price__lt=10)
    with transaction.atomic():
        cheap.update(name="Sale")  # QuerySet.update() sends no signal: no event by itself
        notify(cheap, Action.UPDATE)  # one update per product, sent when the transaction commits


async def announce(product):
    await anotify(product, "update")  # from async code: an update with the object as it is now
