# project/settings.py: for manage.py runserver (pip install daphne)
INSTALLED_APPS = ["daphne", *INSTALLED_APPS]  # first: its runserver serves ASGI, websockets too
