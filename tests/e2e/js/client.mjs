// A graphql-ws (graphql-transport-ws) client driven by tests/e2e/test_graphql_ws_js.py.
//
// Usage: node client.mjs '<plan JSON>'   (or the plan on stdin when no argument is given)
//
// The plan:
//   {
//     "url": "ws://127.0.0.1:8000/ws",
//     "timeout_ms": 15000,                 // the whole run; exit code 2 when it passes
//     "sync_query": "{ productCount }",    // optional: the round-trip query (see "Synchronisation")
//     "operations": [
//       {"id": "a", "query": "subscription { ... }", "variables": {}, "results": 2},
//       ...
//     ]
//   }
//
// Every operation is subscribed on one socket, in plan order. An operation is done when it has
// received `results` results (the client then completes it: it sends `complete`), or when the
// server completes it or answers it with an error. The client exits 0 once every operation is
// done.
//
// Output: one JSON object per line on stdout, with an "event" key:
//   {"event": "connected"}                            connection_ack received
//   {"event": "received", "message": {...}}           every protocol message the socket receives
//   {"event": "next", "id": "a", "payload": {...}}    a result, as the library hands it over
//   {"event": "error", "id": "a", "errors": [...]}    the operation failed
//   {"event": "complete", "id": "a", "by": "server" | "client"}
//   {"event": "ready"}                                every operation is established
//   {"event": "synced", "after": "a"}                 the server has processed a's complete
//   {"event": "closed", "code": 1000, "reason": ""}
//   {"event": "done"}                                 every operation is done; exit code 0
// Failures print {"event": "timeout" | "fatal", ...} and a message on stderr, exit code 2 or 1.
//
// Synchronisation. graphql-transport-ws does not acknowledge a subscription, so "ready" (and
// "synced") is printed when a query sent on the same socket AFTER the subscribe (or complete)
// messages has been answered. That proves the server holds the subscriptions because
// strawberry's handler reads the socket's messages one at a time, in order, and starts one task
// per operation: the subscription's task is created, and so first run, before the query's, and
// it reaches the hub's index without giving the event loop away (the docstring of
// Connection.barrier in tests/e2e/test_gql_client.py has the details). Likewise a complete cancels the operation's task before the
// later query's task is created, so the cancelled generator has left the index first.

import { readFileSync } from "node:fs";
import process from "node:process";
import { createClient } from "graphql-ws";
import WebSocket from "ws";

function emit(line) {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

function fail(event, message, extra, code) {
  emit({ event, message, ...extra });
  process.stderr.write(`client.mjs: ${message}\n`);
  process.exit(code);
}

function readPlan() {
  const text = process.argv[2] ?? readFileSync(0, "utf8");
  let plan;
  try {
    plan = JSON.parse(text);
  } catch (error) {
    fail("fatal", `the plan is not valid JSON: ${error.message}`, {}, 1);
  }
  if (typeof plan?.url !== "string" || !Array.isArray(plan.operations)) {
    fail("fatal", 'the plan needs "url" (a string) and "operations" (a list)', {}, 1);
  }
  return plan;
}

const plan = readPlan();
const timeoutMs = plan.timeout_ms ?? 15000;
const syncQuery = plan.sync_query ?? "{ productCount }";

// The id of the next operation: graphql-ws calls generateID synchronously in subscribe().
let nextId = null;
let syncCount = 0;

const client = createClient({
  url: plan.url,
  webSocketImpl: WebSocket,
  lazy: false,
  retryAttempts: 0,
  generateID: () => nextId,
  onNonLazyError: (error) =>
    fail("fatal", `the connection failed: ${describe(error)}`, {}, 1),
  on: {
    connected: () => emit({ event: "connected" }),
    message: (message) => emit({ event: "received", message }),
    closed: (event) => emit({ event: "closed", code: event?.code, reason: event?.reason }),
  },
});

function describe(error) {
  if (error instanceof Error) return error.message;
  if (error && typeof error === "object" && "code" in error) {
    return `closed with code ${error.code} (${error.reason || "no reason"})`;
  }
  return JSON.stringify(error);
}

function subscribe(id, payload, sink) {
  nextId = id;
  return client.subscribe(payload, sink);
}

/** Run the sync query on the socket; resolves once it is answered. */
function sync() {
  syncCount += 1;
  const id = `sync-${syncCount}`;
  return new Promise((resolve, reject) => {
    subscribe(id, { query: syncQuery }, {
      next: () => {},
      error: (error) => reject(new Error(`the sync query failed: ${describe(error)}`)),
      complete: resolve,
    });
  });
}

const pending = new Map(); // id -> {received, wanted}
let finish;
const finished = new Promise((resolve) => {
  finish = resolve;
});

function done(id) {
  pending.delete(id);
  if (pending.size === 0) finish();
}

const timer = setTimeout(() => {
  const waiting = Object.fromEntries(
    [...pending].map(([id, state]) => [id, { received: state.received, wanted: state.wanted }]),
  );
  fail(
    "timeout",
    `timed out after ${timeoutMs} ms waiting for ${JSON.stringify(waiting)}`,
    { pending: waiting },
    2,
  );
}, timeoutMs);

async function main() {
  // Serialised so that "synced" lines come in the order the completes happened.
  let chain = Promise.resolve();
  const later = (work) => {
    chain = chain.then(work).catch((error) => fail("fatal", error.message, {}, 1));
  };

  for (const operation of plan.operations) {
    const state = { received: 0, wanted: operation.results ?? 1 };
    pending.set(operation.id, state);
    let completedByClient = false;
    const unsubscribe = subscribe(
      operation.id,
      { query: operation.query, variables: operation.variables ?? {} },
      {
        next: (payload) => {
          if (completedByClient) return;
          state.received += 1;
          emit({ event: "next", id: operation.id, payload });
          if (state.received >= state.wanted) {
            completedByClient = true;
            unsubscribe();
            emit({ event: "complete", id: operation.id, by: "client" });
            later(async () => {
              await sync();
              emit({ event: "synced", after: operation.id });
              done(operation.id);
            });
          }
        },
        error: (errors) => {
          emit({ event: "error", id: operation.id, errors });
          done(operation.id);
        },
        complete: () => {
          if (completedByClient) return;
          emit({ event: "complete", id: operation.id, by: "server" });
          done(operation.id);
        },
      },
    );
  }
  await sync();
  emit({ event: "ready" });
  await finished;
  await chain;
  clearTimeout(timer);
  emit({ event: "done" });
  await client.dispose();
  process.exit(0);
}

main().catch((error) => fail("fatal", describe(error), {}, 1));
