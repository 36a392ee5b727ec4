# shop/serializers.py
from rest_framework import serializers
from strawberry_model_subs import model_subscription

from .models import Product


@model_subscription(stream="products")
class ProductSerializer(serializers.ModelSerializer):
    class Meta:
        model = Product
        fields = ["id", "name", "price", "updated"]
