/*
 * The example client page of strawberry-model-subs: plain JavaScript, no dependencies.
 *
 * 1. Reads the streams from the schema (an introspection query POSTed to the GraphQL endpoint).
 * 2. Opens a stream-protocol socket (no subprotocol), shows its channel_id, logs every frame.
 * 3. Sends control operations built by a form, as a text frame on that socket or by HTTP POST.
 * 4. Runs the configured demo mutations.
 * 5. Runs typed {name}Changed subscriptions over graphql-transport-ws (a small client below).
 */
"use strict";

(() => {
  const config = JSON.parse(document.getElementById("sms-client-config").textContent);
  const $ = (id) => document.getElementById(id);

  // -- small helpers ---------------------------------------------------------------------------

  /** Create an element: el("li", {class: "x", dataset: {a: "1"}}, "text", child). */
  function el(tag, attributes = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes)) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "dataset") Object.assign(node.dataset, value);
      else if (name === "class") node.className = value;
      else if (name === "text") node.textContent = value;
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : value);
    }
    node.append(...children.filter((child) => child !== null && child !== undefined));
    return node;
  }

  /** An absolute URL for a configured path; ws(s):// for websockets, following the page. */
  function resolveUrl(path, websocket) {
    const url = new URL(path, window.location.href);
    if (websocket && url.protocol === "http:") url.protocol = "ws:";
    if (websocket && url.protocol === "https:") url.protocol = "wss:";
    return url.href;
  }

  function clockTime(date) {
    const pad = (number, width = 2) => String(number).padStart(width, "0");
    return (
      `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}` +
      `.${pad(date.getMilliseconds(), 3)}`
    );
  }

  function parseJson(text) {
    try {
      return JSON.parse(text);
    } catch (error) {
      return undefined;
    }
  }

  function showAlert(message) {
    const alert = $("page-alert");
    alert.textContent = message;
    alert.hidden = !message;
  }

  /** How a websocket closed, for the log. */
  function closeText(event) {
    return `code ${event.code}${event.reason ? `: ${event.reason}` : ""}`;
  }

  function setBadge(node, state, text) {
    node.dataset.state = state;
    node.textContent = text;
  }

  function checkedValues(containerId) {
    return Array.from(
      $(containerId).querySelectorAll("input[type=checkbox]:checked"),
      (box) => box.value,
    );
  }

  function radioValue(form, name) {
    return form.querySelector(`input[name="${name}"]:checked`).value;
  }

  // -- the log ---------------------------------------------------------------------------------

  const SOURCES = { stream: "stream socket", http: "HTTP", typed: "typed socket" };
  const DIRECTIONS = { sent: "→ sent", received: "← received", note: "• note" };
  /** Older entries are dropped past this many, so a page left open does not grow forever. */
  const MAX_ENTRIES = 2000;
  const logList = $("log");

  /**
   * Add one entry. source: stream | http | typed; direction: sent | received | note;
   * kind: a short word (connect, ack, event, request, response, next...); text: the frame.
   */
  function log(source, direction, kind, text, { summary = "", problem = false } = {}) {
    const now = new Date();
    const atBottom = logList.scrollHeight - logList.scrollTop - logList.clientHeight < 40;
    const entry = el(
      "li",
      {
        class: `entry entry-${direction}${problem ? " entry-problem" : ""}`,
        dataset: { source, direction, kind },
        hidden: !sourceShown(source),
      },
      el(
        "div",
        { class: "entry-head" },
        el("time", { datetime: now.toISOString(), text: clockTime(now) }),
        el("span", { class: `dir dir-${direction}`, text: DIRECTIONS[direction] }),
        el("span", { class: "source", text: SOURCES[source] }),
        el("span", { class: "kind", text: summary ? `${kind} · ${summary}` : kind }),
      ),
      el("pre", { class: "entry-body" }, el("code", { text })),
    );
    logList.append(entry);
    while (logList.childElementCount > MAX_ENTRIES) logList.firstElementChild.remove();
    if (atBottom) logList.scrollTop = logList.scrollHeight;
  }

  function sourceShown(source) {
    const box = document.querySelector(`input[name="log-source"][value="${source}"]`);
    return !box || box.checked;
  }

  for (const box of document.querySelectorAll('input[name="log-source"]')) {
    box.addEventListener("change", () => {
      for (const entry of logList.querySelectorAll(`li[data-source="${box.value}"]`)) {
        entry.hidden = !box.checked;
      }
    });
  }
  $("log-clear").addEventListener("click", () => logList.replaceChildren());

  // -- GraphQL over HTTP -----------------------------------------------------------------------

  const graphqlUrl = resolveUrl(config.graphqlPath, false);

  /** POST {query, variables}; log both sides unless quiet; return the parsed JSON answer. */
  async function postGraphQL(body, { kind = "request", summary = "", quiet = false } = {}) {
    const text = JSON.stringify(body);
    if (!quiet) log("http", "sent", kind, `POST ${config.graphqlPath}\n${text}`, { summary });
    const headers = { "Content-Type": "application/json", Accept: "application/json" };
    if (config.csrfToken) headers["X-CSRFToken"] = config.csrfToken;
    let response;
    try {
      response = await fetch(graphqlUrl, {
        method: "POST",
        headers,
        body: text,
        credentials: "same-origin",
      });
    } catch (error) {
      log("http", "note", "error", `POST ${config.graphqlPath} failed: ${error.message}`, {
        problem: true,
      });
      throw error;
    }
    const answer = await response.text();
    const result = parseJson(answer);
    const problem = !response.ok || result === undefined || Boolean(result.errors);
    if (!quiet || problem) {
      log("http", "received", "response", `HTTP ${response.status}\n${answer}`, {
        summary,
        problem,
      });
    }
    if (result === undefined) {
      throw new Error(
        `HTTP ${response.status} from ${config.graphqlPath}: ${answer.slice(0, 200)}`,
      );
    }
    return result;
  }

  // -- the schema ------------------------------------------------------------------------------

  const INTROSPECTION = `
    query ExampleClientSchema {
      __schema {
        subscriptionType {
          fields {
            name
            description
            args { name type { ...TypeRef } }
            type { ...TypeRef }
          }
        }
        types {
          kind
          name
          fields { name type { ...TypeRef } }
          enumValues { name }
        }
      }
    }
    fragment TypeRef on __Type {
      kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } }
    }`;

  /** The named type under NON_NULL and LIST wrappers. */
  function namedType(ref) {
    while (ref.ofType) ref = ref.ofType;
    return ref;
  }

  /** The type as written in a document: [UserFields!], Action!... */
  function typeText(ref) {
    if (ref.kind === "NON_NULL") return `${typeText(ref.ofType)}!`;
    if (ref.kind === "LIST") return `[${typeText(ref.ofType)}]`;
    return ref.name;
  }

  const LEAF_KINDS = new Set(["SCALAR", "ENUM"]);

  /**
   * The streams of the schema.
   * control: Subscription fields with a channelId argument; their data argument's enum gives
   * the fields. changed: {name}Changed fields returning {Name}Event, whose data type gives the
   * selectable fields.
   */
  function readSchema(schema) {
    const types = new Map(schema.types.map((type) => [type.name, type]));
    const enumValues = (ref) =>
      (types.get(namedType(ref).name)?.enumValues || []).map((v) => v.name);
    const fields = schema.subscriptionType ? schema.subscriptionType.fields : [];
    const streamNames = new Map();
    const changed = [];
    for (const field of fields) {
      if (!field.name.endsWith("Changed")) continue;
      const event = types.get(namedType(field.type).name);
      const dataField = event?.fields?.find((f) => f.name === "data");
      if (!dataField) continue;
      const dataType = types.get(namedType(dataField.type).name);
      if (!dataType || dataType.kind !== "OBJECT") continue;
      const selectable = (dataType.fields || [])
        .map((f) => {
          const target = namedType(f.type);
          if (LEAF_KINDS.has(target.kind)) return { name: f.name, selection: f.name };
          const leaves = (types.get(target.name)?.fields || [])
            .filter((sub) => LEAF_KINDS.has(namedType(sub.type).kind))
            .map((sub) => sub.name);
          return leaves.length
            ? { name: f.name, selection: `${f.name} { ${leaves.join(" ")} }` }
            : null;
        })
        .filter(Boolean);
      const actionArg = field.args.find((arg) => arg.name === "action");
      const idArg = field.args.find((arg) => arg.name === "id");
      const match = /on stream '([^']+)'/.exec(field.description || "");
      const prefix = field.name.slice(0, -"Changed".length);
      if (match) streamNames.set(prefix, match[1]);
      changed.push({
        field: field.name,
        stream: match ? match[1] : null,
        dataType: dataType.name,
        fields: selectable,
        actions: actionArg ? enumValues(actionArg.type) : [],
        actionType: actionArg ? typeText(actionArg.type) : null,
        idType: idArg ? typeText(idArg.type) : null,
      });
    }
    const control = [];
    for (const field of fields) {
      const args = new Map(field.args.map((arg) => [arg.name, arg]));
      if (!args.has("channelId")) continue;
      const prefix = field.name.replace(/Subscription$/, "");
      control.push({
        field: field.name,
        stream: streamNames.get(prefix) || null,
        args: Object.fromEntries(Array.from(args, ([name, arg]) => [name, typeText(arg.type)])),
        actions: args.has("action") ? enumValues(args.get("action").type) : [],
        operations: args.has("operation") ? enumValues(args.get("operation").type) : [],
        fields: args.has("data") ? enumValues(args.get("data").type) : [],
      });
    }
    return { control, changed };
  }

  function streamLabel(stream, field) {
    return stream ? `${stream} (${field})` : field;
  }

  function fillSelect(select, options, selected) {
    select.replaceChildren(
      ...options.map(({ value, label }) =>
        el("option", { value, selected: value === selected }, label),
      ),
    );
  }

  function fillChecks(containerId, items, checked) {
    $(containerId).replaceChildren(
      ...items.map(({ value, label }) =>
        el(
          "label",
          { class: "check" },
          el("input", { type: "checkbox", value, checked }),
          el("span", { text: label }),
        ),
      ),
    );
  }

  for (const button of document.querySelectorAll("button[data-check]")) {
    button.addEventListener("click", () => {
      const container = $(button.dataset.check);
      for (const box of container.querySelectorAll("input[type=checkbox]")) {
        box.checked = button.dataset.value === "true";
      }
      container.dispatchEvent(new Event("change", { bubbles: true }));
    });
  }

  // -- the stream socket -----------------------------------------------------------------------

  const streamUrl = resolveUrl(config.websocketPath, true);
  const stream = {
    socket: null,
    channelId: null,
    /** Control requests sent as frames, oldest first: the socket answers them in order. */
    pending: [],
    /** stream -> the cursor of the last event received: where a subscription resumes. */
    cursors: new Map(),
    /** The subscriptions held when the socket closed: resumed on the next connect. */
    toResume: [],
    /** Resume requests not answered yet: events meanwhile are what the socket missed. */
    resuming: 0,
  };

  function describeStreamFrame(frame) {
    if (frame === undefined || frame === null || typeof frame !== "object") {
      return ["frame", "", true];
    }
    if ("channel_id" in frame && "connect" in frame) return ["connect", frame.connect, false];
    if ("stream" in frame && "payload" in frame) {
      return ["event", `${frame.stream} ${frame.payload?.action ?? ""}`.trim(), false];
    }
    if ("operation" in frame && "ok" in frame) {
      return ["ack", `${frame.operation} ${frame.stream} ${frame.action}`, !frame.ok];
    }
    if ("data" in frame || "errors" in frame) return ["response", "", Boolean(frame.errors)];
    return ["frame", "", false];
  }

  function connectStream() {
    setBadge($("stream-status"), "connecting", "connecting");
    $("stream-reconnect").hidden = true;
    const socket = new WebSocket(streamUrl);
    stream.socket = socket;
    stream.pending = [];
    socket.addEventListener("open", () => setBadge($("stream-status"), "open", "open"));
    socket.addEventListener("message", (message) => {
      if (typeof message.data !== "string") {
        log("stream", "received", "binary", "(a binary frame)", { problem: true });
        return;
      }
      const frame = parseJson(message.data);
      const [kind, summary, problem] = describeStreamFrame(frame);
      const replayed = kind === "event" && stream.resuming > 0;
      log("stream", "received", replayed ? "replayed" : kind, message.data, {
        summary: replayed ? `${summary} (missed while disconnected)` : summary,
        problem,
      });
      if (kind === "event" && typeof frame.cursor === "string") {
        stream.cursors.set(frame.stream, frame.cursor);
      }
      if (kind === "connect") {
        stream.channelId = frame.channel_id;
        $("channel-id").textContent = frame.channel_id;
        updateControlPreview();
        resumeSubscriptions();
      } else if (kind === "response") {
        const request = stream.pending.shift();
        if (request) applyControlResult(request, frame);
      }
    });
    socket.addEventListener("close", (event) => {
      if (stream.socket !== socket) return;
      stream.socket = null;
      stream.channelId = null;
      stream.pending = [];
      $("channel-id").textContent = "none (closed)";
      setBadge($("stream-status"), "closed", `closed (${event.code})`);
      $("stream-reconnect").hidden = false;
      stream.toResume = Array.from(held.values());
      stream.resuming = 0;
      held.clear();
      renderHeld();
      updateControlPreview();
      const resumable = stream.toResume.length
        ? `; ${stream.toResume.length} subscription(s) resume from their last cursor on reconnect`
        : "";
      log("stream", "note", "closed", closeText(event) + resumable, {
        problem: event.code !== 1000,
      });
    });
  }

  /** After a reconnect, subscribe again to what the old socket held, each from its stream's
   * last cursor: the server sends what was missed first (logged as "replayed"). */
  function resumeSubscriptions() {
    const items = stream.toResume;
    stream.toResume = [];
    for (const item of items) {
      const after = stream.cursors.get(item.stream) ?? "";
      log("stream", "note", "resume", `resuming ${item.stream} ${item.action} after ${after || "now"}`);
      const request = buildControlRequest({
        info: item.info,
        operation: "SUBSCRIBE",
        action: item.action,
        id: item.id,
        fields: item.fields,
        after,
      });
      request.resume = true;
      stream.resuming += 1;
      sendControl(request);
    }
  }

  $("stream-reconnect").addEventListener("click", connectStream);

  // -- the control form ------------------------------------------------------------------------

  const controlForm = $("control-form");
  let controlStreams = [];
  /** What the socket holds, as learned from our own successful control requests. */
  const held = new Map();

  function currentControl() {
    return controlStreams.find((item) => item.field === $("control-stream").value);
  }

  const CONTROL_ARGS = ["operation", "action", "channelId", "id", "data", "after"];

  /** The control document, every argument a variable typed as the schema says. */
  function controlDocument(info) {
    const names = CONTROL_ARGS.filter((name) => info.args[name]);
    const declared = names.map((name) => `$${name}: ${info.args[name]}`);
    const passed = names.map((name) => `${name}: $${name}`);
    return (
      `subscription Control(${declared.join(", ")}) ` +
      `{ ${info.field}(${passed.join(", ")}) { ok error stream operation action } }`
    );
  }

  /** The control request of the form, or of `overrides` (used by the Unsubscribe buttons). */
  function buildControlRequest(overrides = {}) {
    const info = overrides.info || currentControl();
    const id = overrides.id !== undefined ? overrides.id : $("control-id").value.trim();
    const fields =
      overrides.fields !== undefined ? overrides.fields : checkedValues("control-fields");
    const operation = overrides.operation || radioValue(controlForm, "operation");
    const variables = {
      operation,
      action: overrides.action || $("control-action").value,
      channelId: stream.channelId,
      id: id || null,
      data: fields && fields.length ? fields : null,
    };
    if (info.args.after) {
      // Frames with cursors, so the subscription can resume after a reconnect.
      variables.after = overrides.after ?? (operation === "SUBSCRIBE" ? "" : null);
    }
    return { info, body: { query: controlDocument(info), variables, operationName: "Control" } };
  }

  function updateControlPreview() {
    if (!currentControl()) return;
    $("control-preview").textContent = JSON.stringify(buildControlRequest().body, null, 2);
  }

  function selectControlStream() {
    const info = currentControl();
    if (!info) return;
    const previous = $("control-action").value;
    fillSelect(
      $("control-action"),
      info.actions.map((value) => ({ value, label: value })),
      info.actions.includes(previous) ? previous : info.actions[0],
    );
    fillChecks(
      "control-fields",
      info.fields.map((value) => ({ value, label: value })),
      false,
    );
    updateControlPreview();
  }

  function heldKey(info, action, id) {
    return `${info.field}|${action}|${id ?? ""}`;
  }

  /** Keep the list of held subscriptions up to date from the answer to our request. */
  function applyControlResult(request, answer) {
    if (request.resume) stream.resuming = Math.max(0, stream.resuming - 1);
    const result = answer?.data?.[request.info.field];
    if (!result || !result.ok) return;
    const { operation, action, id, data } = request.body.variables;
    const key = heldKey(request.info, action, id);
    if (operation === "SUBSCRIBE") {
      held.set(key, { info: request.info, stream: result.stream, action, id, fields: data });
    } else {
      held.delete(key);
    }
    renderHeld();
  }

  function renderHeld() {
    const items = Array.from(held.values(), (item) => {
      const name = item.stream || item.info.field;
      const target = `${item.action}${item.id ? ` · id ${item.id}` : ""}`;
      const unsubscribe = () =>
        sendControl(
          buildControlRequest({
            info: item.info,
            operation: "UNSUBSCRIBE",
            action: item.action,
            id: item.id,
            fields: null,
          }),
        );
      return el(
        "li",
        {},
        el(
          "span",
          { class: "item-text" },
          el("strong", { text: name }),
          ` ${target} · ${item.fields ? item.fields.join(", ") : "every field"}`,
        ),
        el("button", {
          type: "button",
          class: "small",
          text: "Unsubscribe",
          "aria-label": `Unsubscribe ${name} ${target}`,
          onclick: unsubscribe,
        }),
      );
    });
    $("held-list").replaceChildren(...items);
    $("held-empty").hidden = items.length > 0;
  }

  async function sendControl(request) {
    if (!stream.channelId) {
      showAlert("The stream socket is not connected: reconnect it first.");
      return;
    }
    showAlert("");
    request.body.variables.channelId = stream.channelId;
    const operation = request.body.variables.operation.toLowerCase();
    const summary = `${operation} ${request.info.stream || request.info.field}`;
    if (radioValue(controlForm, "transport") === "http") {
      try {
        const answer = await postGraphQL(request.body, { kind: "control", summary });
        applyControlResult(request, answer);
      } catch (error) {
        if (request.resume) stream.resuming = Math.max(0, stream.resuming - 1);
        showAlert(`The control request failed: ${error.message}`);
      }
      return;
    }
    const text = JSON.stringify(request.body);
    stream.pending.push(request);
    stream.socket.send(text);
    log("stream", "sent", "control", text, { summary });
  }

  controlForm.addEventListener("change", updateControlPreview);
  controlForm.addEventListener("input", updateControlPreview);
  $("control-stream").addEventListener("change", selectControlStream);
  controlForm.addEventListener("submit", (event) => {
    event.preventDefault();
    if (currentControl()) sendControl(buildControlRequest());
  });

  // -- demo actions ----------------------------------------------------------------------------

  function renderDemoActions() {
    const buttons = config.actions.map((action, index) =>
      el("button", {
        type: "button",
        text: action.label,
        dataset: { action: String(index) },
        onclick: async (event) => {
          const button = event.currentTarget;
          button.disabled = true;
          try {
            const body = { query: action.query, variables: action.variables };
            await postGraphQL(body, { kind: "mutation", summary: action.label });
          } catch (error) {
            showAlert(`“${action.label}” failed: ${error.message}`);
          } finally {
            button.disabled = false;
          }
        },
      }),
    );
    $("demo-actions").replaceChildren(...buttons);
    $("demo-empty").hidden = buttons.length > 0;
  }

  // -- graphql-transport-ws --------------------------------------------------------------------

  /**
   * The client side of graphql-transport-ws: connection_init / connection_ack, subscribe, next,
   * error, complete, and pong for every ping. `onMessage(direction, text, message)` sees every
   * message; `onState(state)` is told idle, connecting, open or closed.
   */
  class TransportWsClient {
    constructor(url, { onMessage, onState }) {
      this.url = url;
      this.onMessage = onMessage;
      this.onState = onState;
      this.socket = null;
      this.ready = null;
      this.sinks = new Map();
      this.nextId = 1;
    }

    /** Open the socket and finish the handshake (once); resolves when acknowledged. */
    connect() {
      if (this.ready) return this.ready;
      this.onState("connecting");
      this.ready = new Promise((resolve, reject) => {
        const socket = new WebSocket(this.url, "graphql-transport-ws");
        this.socket = socket;
        let acknowledged = false;
        socket.addEventListener("open", () => {
          if (socket.protocol !== "graphql-transport-ws") {
            socket.close(1002, "the server did not accept graphql-transport-ws");
            return;
          }
          this.send({ type: "connection_init", payload: {} });
        });
        socket.addEventListener("message", (event) => {
          const message = parseJson(event.data);
          this.onMessage("received", event.data, message);
          if (!message || typeof message.type !== "string") return;
          if (message.type === "connection_ack") {
            acknowledged = true;
            this.onState("open");
            resolve();
          } else if (message.type === "ping") {
            this.send({ type: "pong" });
          } else if (
            message.type === "next" ||
            message.type === "error" ||
            message.type === "complete"
          ) {
            const sink = this.sinks.get(message.id);
            if (!sink) return;
            if (message.type === "next") {
              sink.next(message.payload);
            } else {
              this.sinks.delete(message.id);
              if (message.type === "error") sink.error(message.payload);
              else sink.complete();
            }
          }
        });
        socket.addEventListener("close", (event) => {
          if (this.socket !== socket) return;
          this.socket = null;
          this.ready = null;
          this.onState("closed", event);
          const sinks = Array.from(this.sinks.values());
          this.sinks.clear();
          for (const sink of sinks) sink.closed(event);
          if (!acknowledged) {
            reject(new Error(`the socket closed before connection_ack (${closeText(event)})`));
          }
        });
      });
      return this.ready;
    }

    send(message) {
      const text = JSON.stringify(message);
      this.socket.send(text);
      this.onMessage("sent", text, message);
    }

    /** Start a subscription; sink: {next(payload), error(errors), complete(), closed(event)}. */
    async subscribe(payload, sink) {
      await this.connect();
      const id = String(this.nextId++);
      this.sinks.set(id, sink);
      this.send({ id, type: "subscribe", payload });
      return id;
    }

    /** Stop a subscription (the client's complete). */
    stop(id) {
      if (!this.sinks.delete(id) || !this.socket) return;
      this.send({ id, type: "complete" });
    }
  }

  // -- the typed panel -------------------------------------------------------------------------

  const typedForm = $("typed-form");
  let typedStreams = [];
  const running = new Map();

  const typedClient = new TransportWsClient(streamUrl, {
    onMessage(direction, text, message) {
      const type = message && typeof message.type === "string" ? message.type : "message";
      const problem = type === "error" || (type === "next" && Boolean(message.payload?.errors));
      const summary = message && message.id ? `id ${message.id}` : "";
      log("typed", direction, type, text, { summary, problem });
    },
    onState(state, event) {
      const labels = { connecting: "connecting", open: "connected", closed: "closed" };
      const text = state === "closed" && event ? `closed (${event.code})` : labels[state];
      setBadge($("typed-status"), state, text);
      if (state === "closed" && event) {
        log("typed", "note", "closed", closeText(event), { problem: event.code !== 1000 });
      }
    },
  });

  function currentTyped() {
    return typedStreams.find((item) => item.field === $("typed-field").value);
  }

  function buildTypedRequest() {
    const info = currentTyped();
    const chosen = new Set(checkedValues("typed-fields"));
    const selection = info.fields.filter((field) => chosen.has(field.name)).map((f) => f.selection);
    const id = $("typed-id").value.trim();
    const declared = [];
    const passed = [];
    if (info.actionType) {
      declared.push(`$action: ${info.actionType}`);
      passed.push("action: $action");
    }
    if (info.idType) {
      declared.push(`$id: ${info.idType}`);
      passed.push("id: $id");
    }
    const query =
      `subscription Typed${declared.length ? `(${declared.join(", ")})` : ""} ` +
      `{ ${info.field}${passed.length ? `(${passed.join(", ")})` : ""} ` +
      `{ stream action model data { ${selection.join(" ")} } } }`;
    const variables = {};
    if (info.actionType) variables.action = $("typed-action").value;
    if (info.idType) variables.id = id || null;
    return { info, selection, body: { query, variables, operationName: "Typed" } };
  }

  function updateTypedPreview() {
    if (!currentTyped()) return;
    $("typed-preview").textContent = JSON.stringify(buildTypedRequest().body, null, 2);
  }

  function selectTypedStream() {
    const info = currentTyped();
    if (!info) return;
    $("typed-data-type").textContent = info.dataType;
    fillSelect(
      $("typed-action"),
      info.actions.map((value) => ({ value, label: value })),
      info.actions.includes("ALL_ACTIONS") ? "ALL_ACTIONS" : info.actions[0],
    );
    $("typed-action").disabled = !info.actionType;
    $("typed-id").disabled = !info.idType;
    fillChecks(
      "typed-fields",
      info.fields.map((field) => ({ value: field.name, label: field.selection })),
      true,
    );
    updateTypedPreview();
  }

  function renderRunning() {
    const items = Array.from(running.values(), (item) => {
      const last = item.last === undefined ? "no event yet" : JSON.stringify(item.last);
      return el(
        "li",
        { dataset: { operationId: item.id } },
        el(
          "span",
          { class: "item-text" },
          el("strong", { text: item.label }),
          ` · ${item.count} event${item.count === 1 ? "" : "s"}`,
          el("code", { class: "last-event", text: last }),
        ),
        el("button", {
          type: "button",
          class: "small",
          text: "Stop",
          "aria-label": `Stop ${item.label}`,
          onclick: () => {
            typedClient.stop(item.id);
            running.delete(item.id);
            renderRunning();
          },
        }),
      );
    });
    $("typed-list").replaceChildren(...items);
    $("typed-empty").hidden = items.length > 0;
  }

  typedForm.addEventListener("change", updateTypedPreview);
  typedForm.addEventListener("input", updateTypedPreview);
  $("typed-field").addEventListener("change", selectTypedStream);
  typedForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const info = currentTyped();
    if (!info) return;
    const request = buildTypedRequest();
    const problem = $("typed-error");
    if (!request.selection.length) {
      problem.textContent = "Pick at least one field of data.";
      problem.hidden = false;
      return;
    }
    problem.hidden = true;
    showAlert("");
    const { variables } = request.body;
    const label =
      `${info.field} ${variables.action || ""}${variables.id ? ` id ${variables.id}` : ""}`.trim();
    const item = { id: null, label, count: 0, last: undefined };
    const finish = () => {
      running.delete(item.id);
      renderRunning();
    };
    try {
      item.id = await typedClient.subscribe(request.body, {
        next(payload) {
          item.count += 1;
          item.last = payload?.data?.[info.field]?.data ?? payload;
          renderRunning();
        },
        error(errors) {
          const messages = Array.isArray(errors) ? errors.map((e) => e.message).join("; ") : errors;
          showAlert(`${label} failed: ${messages}`);
          finish();
        },
        complete: finish,
        closed: finish,
      });
      running.set(item.id, item);
      renderRunning();
    } catch (error) {
      showAlert(`The typed socket failed: ${error.message}`);
    }
  });

  // -- start -----------------------------------------------------------------------------------

  async function loadSchema() {
    let result;
    try {
      result = await postGraphQL({ query: INTROSPECTION }, { quiet: true });
    } catch (error) {
      showAlert(`Could not read the schema from ${config.graphqlPath}: ${error.message}`);
      return;
    }
    if (!result.data || !result.data.__schema) {
      const reason = (result.errors || []).map((e) => e.message).join("; ") || "no data";
      showAlert(`Could not read the schema from ${config.graphqlPath}: ${reason}`);
      return;
    }
    const schema = readSchema(result.data.__schema);
    controlStreams = schema.control;
    typedStreams = schema.changed;
    const names = controlStreams.map((info) => info.stream || info.field).join(", ");
    log("http", "note", "schema", `streams: ${names || "none"}`);
    if (!controlStreams.length) {
      showAlert("The schema has no stream: its Subscription type has no field taking channelId.");
    }
    fillSelect(
      $("control-stream"),
      controlStreams.map((info) => ({
        value: info.field,
        label: streamLabel(info.stream, info.field),
      })),
    );
    fillSelect(
      $("typed-field"),
      typedStreams.map((info) => ({
        value: info.field,
        label: streamLabel(info.stream, info.field),
      })),
    );
    selectControlStream();
    selectTypedStream();
    $("control-send").disabled = !controlStreams.length;
    $("typed-send").disabled = !typedStreams.length;
  }

  $("control-send").disabled = true;
  $("typed-send").disabled = true;
  renderDemoActions();
  renderHeld();
  renderRunning();
  connectStream();
  loadSchema();
})();
