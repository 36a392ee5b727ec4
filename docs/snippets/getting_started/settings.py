# project/settings.py: add at the end
INSTALLED_APPS += ["channels", "rest_framework", "strawberry_model_subs", "shop"]
ASGI_APPLICATION = "project.asgi.application"
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}  # one process
