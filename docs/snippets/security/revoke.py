# shop/signals.py (imported by ShopConfig.ready): a logout ends the user's sockets everywhere
from django.contrib.auth.signals import user_logged_out
from django.dispatch import receiver
from strawberry_model_subs import revoke


@receiver(user_logged_out)
def end_sockets(sender, request, user, **kwargs):
    if user is not None:
        revoke(user)
