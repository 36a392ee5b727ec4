from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [
    path("trigger", views.trigger),
    path("health", views.health),
    path("gcstats", views.gc_stats),
]
