# project/urls.py
from django.contrib import admin
from django.urls import path
from django.views.decorators.csrf import ensure_csrf_cookie
from strawberry_model_subs.views import GraphQLView

from .schema import schema

urlpatterns = [
    path("admin/", admin.site.urls),
    # ensure_csrf_cookie: GraphiQL sends the CSRF cookie back with its POSTs
    path("graphql", ensure_csrf_cookie(GraphQLView.as_view(schema=schema))),
]
