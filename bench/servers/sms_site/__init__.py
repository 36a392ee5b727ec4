"""This library's contender: one registered serializer, GraphQLWSConsumer at /ws."""
