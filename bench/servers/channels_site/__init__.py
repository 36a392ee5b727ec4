"""The usual Channels pattern: an AsyncJsonWebsocketConsumer per socket in one group, and a
post_save receiver that serializes once and ``group_send``s."""
