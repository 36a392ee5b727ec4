"""Plain Strawberry: its channels GraphQLWSConsumer and ``listen_to_channel`` on one group, fed by
a post_save receiver that ``group_send``s (as Strawberry's documentation shows)."""
