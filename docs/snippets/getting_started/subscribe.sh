python subscribe.py
