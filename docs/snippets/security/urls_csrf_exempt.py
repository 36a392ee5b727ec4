# project/urls.py: the endpoint without CSRF protection (read the trade-off first)
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from strawberry_model_subs.views import GraphQLView

from .schema import schema

urlpatterns = [path("graphql", csrf_exempt(GraphQLView.as_view(schema=schema)))]
