python -m venv .venv && . .venv/bin/activate
pip install strawberry-model-subs "uvicorn[standard]"
django-admin startproject project .
python manage.py startapp shop
