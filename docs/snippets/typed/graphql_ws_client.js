// npm install graphql-ws; what Apollo's GraphQLWsLink and urql's subscriptionExchange wrap
import { createClient } from "graphql-ws";

const client = createClient({ url: "ws://127.0.0.1:8000/ws" });

client.subscribe(
  { query: "subscription { productChanged(action: UPDATE) { action data { id name } } }" },
  {
    next: (result) => console.log(JSON.stringify(result.data.productChanged)),
    error: (error) => console.error(error),
    complete: () => {},
  },
);
