from __future__ import annotations

import datetime
import uuid
from decimal import Decimal

from django.conf import settings
from django.db import models

from strawberry_model_subs import NotifyingManager


class Category(models.Model):
    name = models.CharField(max_length=100)

    def __str__(self) -> str:
        return self.name


class Product(models.Model):
    name = models.CharField(max_length=100)
    price = models.DecimalField(max_digits=10, decimal_places=2, default=0)
    in_stock = models.BooleanField(default=True)
    category = models.ForeignKey(
        Category,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="products",
    )
    created = models.DateTimeField(auto_now_add=True)
    tags = models.JSONField(default=list, blank=True)
    status = models.CharField(
        max_length=20,
        choices=[("draft", "Draft"), ("published", "Published")],
        default="draft",
    )

    def __str__(self) -> str:
        return self.name


class Review(models.Model):
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="reviews")
    rating = models.IntegerField()
    text = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"{self.product_id}: {self.rating}"


class Tag(models.Model):
    """A model whose primary key is a string."""

    code = models.CharField(max_length=30, primary_key=True)
    label = models.CharField(max_length=100)

    def __str__(self) -> str:
        return self.label


class Ticket(models.Model):
    """A model whose primary key is a UUID."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    title = models.CharField(max_length=100)

    def __str__(self) -> str:
        return self.title


class Everything(models.Model):
    """One field of every concrete Django model field type (ImageField aside: it needs Pillow).

    Every non-null field has a default, so ``Everything.objects.create()`` works bare.
    """

    big_integer_field = models.BigIntegerField(default=0)
    # BinaryField is editable=False by default, so serializers treat it as read-only.
    binary_field = models.BinaryField(null=True, blank=True)
    boolean_field = models.BooleanField(default=False)
    char_field = models.CharField(max_length=100, blank=True, default="")
    date_field = models.DateField(default=datetime.date(2024, 1, 1))
    date_time_field = models.DateTimeField(
        default=datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
    )
    decimal_field = models.DecimalField(max_digits=10, decimal_places=2, default=Decimal("0"))
    duration_field = models.DurationField(default=datetime.timedelta(0))
    email_field = models.EmailField(blank=True, default="")
    file_field = models.FileField(blank=True, upload_to="files", default="")
    file_path_field = models.FilePathField(path="/tmp", blank=True, default="")
    float_field = models.FloatField(default=0.0)
    # GenericIPAddressField forbids blank=True without null=True, hence a real address.
    generic_ip_address_field = models.GenericIPAddressField(default="127.0.0.1")
    integer_field = models.IntegerField(default=0)
    json_field = models.JSONField(default=dict, blank=True)
    positive_big_integer_field = models.PositiveBigIntegerField(default=0)
    positive_integer_field = models.PositiveIntegerField(default=0)
    positive_small_integer_field = models.PositiveSmallIntegerField(default=0)
    slug_field = models.SlugField(blank=True, default="")
    small_integer_field = models.SmallIntegerField(default=0)
    text_field = models.TextField(blank=True, default="")
    time_field = models.TimeField(default=datetime.time(0, 0))
    url_field = models.URLField(blank=True, default="")
    uuid_field = models.UUIDField(default=uuid.uuid4)

    # Deliberately nullable text, to cover an optional String.
    nickname = models.CharField(max_length=100, null=True, blank=True)
    category = models.ForeignKey(Category, null=True, blank=True, on_delete=models.SET_NULL)
    tags = models.ManyToManyField(Tag, blank=True)
    ticket = models.OneToOneField(Ticket, null=True, blank=True, on_delete=models.SET_NULL)
    size = models.CharField(
        max_length=1,
        choices=[("s", "Small"), ("m", "Medium"), ("l", "Large")],
        default="m",
    )
    priority = models.IntegerField(choices=[(1, "Low"), (2, "Normal"), (3, "High")], default=2)

    class Meta:
        verbose_name_plural = "everything"

    def __str__(self) -> str:
        return f"Everything #{self.pk}"


class Note(models.Model):
    """A user's note: the protected streams of the security tests (``notes``, ``note-feed``)."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notes"
    )
    text = models.CharField(max_length=200, blank=True, default="")
    #: Only staff may receive it (``fields_for``).
    secret = models.CharField(max_length=200, blank=True, default="")
    #: Shared notes reach every subscriber of ``note-feed`` (its ``event_filter``).
    shared = models.BooleanField(default=False)

    def __str__(self) -> str:
        return f"Note #{self.pk} of user {self.owner_id}"


class ApiToken(models.Model):
    """A bearer token for websocket clients (read by ``tests.testapp.auth.authenticate``)."""

    key = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    #: When the token stops being valid (None: never); a connection made with it is closed then.
    expires_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"token of user {self.user_id}"


class Topic(models.Model):
    """The other side of :class:`Article`'s many-to-many relation; its serializer renders the
    reverse relation (``articles``)."""

    name = models.CharField(max_length=100)

    def __str__(self) -> str:
        return self.name


class Article(models.Model):
    """A model with a many-to-many relation and the opt-in :class:`NotifyingManager`."""

    title = models.CharField(max_length=100)
    topics = models.ManyToManyField(Topic, blank=True, related_name="articles")

    objects = NotifyingManager()

    def __str__(self) -> str:
        return self.title
