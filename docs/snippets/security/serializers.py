# shop/serializers.py: add
from rest_framework import serializers
from rest_framework.permissions import BasePermission, IsAuthenticated
from strawberry_model_subs import model_subscription

from .models import Order


class IsOwner(BasePermission):
    message = "you only see your own orders"

    def has_object_permission(self, request, view, obj):
        # obj is the serializer's output: a foreign key is its primary key, and may be a string
        # (when the model was saved with owner_id="3"); compare as strings.
        return request.user.is_staff or str(obj.owner) == str(request.user.pk)


@model_subscription(
    stream="orders",
    permission_classes=[IsAuthenticated, IsOwner],
    fields_for=lambda user: None if user.is_staff else {"id", "status", "owner"},
)
class OrderSerializer(serializers.ModelSerializer):
    class Meta:
        model = Order
        fields = ["id", "status", "owner", "total", "notes"]
