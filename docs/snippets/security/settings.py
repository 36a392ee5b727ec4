# project/settings.py: add at the end
INSTALLED_APPS += ["rest_framework.authtoken"]  # DRF's Token model (then: manage.py migrate)
STRAWBERRY_MODEL_SUBS = {"AUTHENTICATE": "project.auth.authenticate"}
