# shop/restock.py: one event per object per transaction
from django.db import transaction

from .models import Product


def create_and_rename(name, new_name):
    with transaction.atomic():
        product = Product.objects.create(name=name)
        product.name = new_name
        product.save()  # create then update in one transaction: one create, with new_name
    return product
