# shop/serializers.py: add
from rest_framework import serializers
from strawberry_model_subs import model_subscription

from .models import Coupon


@model_subscription(stream="coupons")
class CouponSerializer(serializers.ModelSerializer):
    class Meta:
        model = Coupon
        fields = ["id", "code", "active"]
