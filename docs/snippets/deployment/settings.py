# project/settings.py: several processes (server workers, Celery workers, commands)
REDIS_HOST = {
    "address": "redis://127.0.0.1:6379/0",
    "max_connections": 1000,  # redis-py 8 caps a pool at 100 connections otherwise
    "socket_timeout": 30,  # redis-py 8 defaults to 5 s, the time channels_redis blocks reading
}
CHANNEL_LAYERS = {
    "default": {
        # or "channels_redis.pubsub.RedisPubSubChannelLayer"
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [REDIS_HOST], "capacity": 1000},
    }
}
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "shop",
        "USER": "shop",
        "HOST": "127.0.0.1",
        "PORT": "5432",
    }
}
