"""The app of the write-path benchmark (``bench/write_path.py``): two models of the same shape,
``Item`` registered with this library (``serializers.py``) and ``PlainItem`` not."""
