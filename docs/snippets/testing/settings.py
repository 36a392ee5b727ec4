# project/settings_test.py: the settings of the test runs, on a shared Redis
import os
import uuid

from .settings import *  # noqa: F403

# A prefix of this run's own (a server the tests start inherits it through the environment):
# groups that other runs or a developer's server left in Redis are not this run's, and see none
# of its events.
TEST_RUN = os.environ.setdefault("SHOP_TEST_RUN", uuid.uuid4().hex[:12])
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": [
                {
                    "address": "redis://127.0.0.1:6379/0",
                    "max_connections": 1000,
                    "socket_timeout": 30,
                }
            ],
            "prefix": f"test-{TEST_RUN}",
        },
    }
}
