# shop/coupons.py
from .models import Coupon


def issue(*codes):
    return Coupon.objects.bulk_create([Coupon(code=code) for code in codes])  # a create each


def expire_all():
    Coupon.objects.filter(active=True).update(active=False)  # an update per coupon it changed
