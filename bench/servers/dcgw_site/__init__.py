"""django-channels-graphql-ws (graphene 2): a ``channels_graphql_ws.Subscription`` broadcast from
post_save, served by a ``GraphqlWsConsumer`` (the graphql-ws protocol), as its README shows."""
