# project/settings.py: every key is optional; these are the defaults
STRAWBERRY_MODEL_SUBS = {
    "CHANNEL_LAYER": "default",  # alias in CHANNEL_LAYERS that carries events
    "GROUP_PREFIX": "sms",  # groups are named "<prefix>.<stream>"
    "CONTROL_TIMEOUT": 5.0,  # seconds to wait for a socket held by another process
    "SEND_QUEUE_SIZE": 1000,  # frames queued for one socket before it is closed (1013)
    "MAX_SUBSCRIPTIONS_PER_CONNECTION": 100,  # stream-protocol subscriptions per socket
    "AUTHENTICATE": None,  # dotted path of the connection authentication hook (see Security)
    "MAX_FRAME_SIZE": 65536,  # largest text frame a client may send, in characters
    "CONTROL_RATE": 20.0,  # control operations per second per stream socket (bursts of 2x)
    "SHARE_TYPED_EXECUTION": True,  # one execution per event and distinct typed document
    "AUTODISCOVER": ["serializers"],  # modules imported from every app at startup ([]: none)
    "PUBLISH_BUFFER_SIZE": 10000,  # events kept while Redis or the database is unreachable
    "PUBLISH_EXIT_TIMEOUT": 5.0,  # seconds an exiting process waits for its events to go out
    "HISTORY_SIZE": 10000,  # events kept per stream for resuming subscribers (0: none, no cursors)
    "HISTORY_TTL": 300.0,  # seconds an event is kept in its stream's history
    "OLD_CONNECTIONS_INTERVAL": 1.0,  # seconds between closings of stale DB connections
}
