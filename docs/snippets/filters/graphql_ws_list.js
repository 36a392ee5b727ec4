// The same list over graphql-ws: products whose name starts with "Green"
import { createClient } from "graphql-ws";

const client = createClient({ url: "ws://127.0.0.1:8000/ws" });
const products = new Map(); // load it with a query first (see Resumable streams: the handoff)

client.subscribe(
  {
    query: `subscription ($where: ProductFilter) {
      productChanged(where: $where) { action moved data { id name } }
    }`,
    variables: { where: { name: { startsWith: "Green" } } },
  },
  {
    next: ({ data }) => {
      const { action, moved, data: product } = data.productChanged;
      if (action === "DELETE") products.delete(product.id); // deleted, or left the filter
      else products.set(product.id, product.name); // created, entered, or changed
      console.log(JSON.stringify({ moved, products: Object.fromEntries(products) }));
    },
    error: (error) => console.error(error),
    complete: () => {},
  },
);
