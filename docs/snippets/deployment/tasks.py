# shop/tasks.py
from celery import shared_task

from .models import Product


@shared_task
def rename_product(pk, name):
    product = Product.objects.get(pk=pk)
    product.name = name
    product.save()  # published by the worker process to every server process, over Redis
