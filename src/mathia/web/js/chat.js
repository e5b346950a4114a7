// Rooms and messages: what the client holds per room, and the chat view that shows it.
// Every room of every workspace is subscribed on the one socket, so switching rooms only
// changes what is drawn, and unread counts stay current everywhere.

import { api, probe } from "./api.js";
import { h, linked, mount, time, dateTime, toast, uuid } from "./dom.js";

const HISTORY_PAGE = 50;
const TYPING_SEND_EVERY_MS = 3_000;
const TYPING_SHOW_MS = 5_000;
// A sent frame with no echo after this long is re-sent over HTTP with the same client_id,
// which the server deduplicates, so a message is never lost nor doubled.
const ECHO_TIMEOUT_MS = 8_000;

class RoomState {
  constructor(room, me) {
    this.id = room.id;
    this.room = room;
    this.me = me;
    this.messages = []; // sorted by seq
    this.ids = new Set();
    this.pending = new Map(); // client_id -> local message not yet echoed
    this.streams = new Map(); // message_id -> text streamed so far
    this.online = new Set();
    this.typing = new Map(); // user_id -> timeout
    this.joined = room.member ?? true;
    this.hasMore = false;
    this.loaded = false;
    this.readKey = `mathia.read.${me.id}.${room.id}`;
    const stored = localStorage.getItem(this.readKey);
    this.lastRead = stored === null ? null : Number(stored);
  }

  get lastSeq() {
    return this.messages.length ? this.messages[this.messages.length - 1].seq : 0;
  }

  /** Insert a message by seq; false when it was already held. */
  add(message) {
    if (this.ids.has(message.id)) return false;
    this.ids.add(message.id);
    const list = this.messages;
    let i = list.length;
    while (i > 0 && list[i - 1].seq > message.seq) i -= 1;
    list.splice(i, 0, message);
    if (message.client_id) this.pending.delete(message.client_id);
    this.streams.delete(message.id);
    return true;
  }

  unread() {
    if (this.lastRead === null) return 0;
    const count = this.messages.filter((m) => m.seq > this.lastRead && m.sender?.id !== this.me.id).length;
    const firstHeld = this.messages[0]?.seq ?? 0;
    return this.hasMore && this.lastRead < firstHeld ? `${count}+` : count;
  }

  markRead() {
    this.lastRead = this.lastSeq;
    localStorage.setItem(this.readKey, String(this.lastRead));
  }
}

export class Chat {
  /** `el` is the chat column; `onChange()` runs when room lists or unread counts change. */
  constructor({ el, gateway, me, onChange }) {
    this.el = el;
    this.gateway = gateway;
    this.me = me;
    this.onChange = onChange;
    this.rooms = new Map();
    this.names = new Map(); // user_id -> display_name
    this.meeting = new Map(); // workspace_id -> members request in flight
    this.active = null;
    this.lastTypingSent = 0;
    this.mutes = new Map(); // workspace_id -> muted until (RFC 3339)
    this.listen();
  }

  listen() {
    const g = this.gateway;
    g.on("message.new", (f) => this.receive(f.message));
    g.on("ack", (f) => this.receive(f.message)); // our own send, confirmed
    g.on("ai.done", (f) => this.receive(f.message));
    g.on("ai.start", (f) => this.stream(f.room_id, f.message_id, ""));
    g.on("ai.delta", (f) => this.stream(f.room_id, f.message_id, f.text));
    g.on("ai.error", (f) => this.streamFailed(f));
    g.on("ai.tool", (f) => this.usingTools(f));
    g.on("presence", (f) => this.presence(f));
    g.on("typing", (f) => this.typing(f));
    g.on("error", (f) => this.frameError(f));
    g.on("notification", (f) => this.notification(f));
    // Presence and typing are only known while connected; the resubscribe announces them afresh.
    g.on("state", (state) => {
      if (state === "online") return;
      for (const room of this.rooms.values()) {
        room.online.clear();
        room.typing.forEach(clearTimeout);
        room.typing.clear();
      }
      this.renderHeader();
      this.renderTyping();
    });
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden && this.active) this.read(this.active);
    });
  }

  /** Load and subscribe the rooms of a workspace; returns them. */
  async loadWorkspace(workspaceId) {
    const [rooms, members] = await Promise.all([
      api("GET", `/api/workspaces/${workspaceId}/rooms`),
      api("GET", `/api/workspaces/${workspaceId}/members`).catch(() => []),
    ]);
    this.learnNames(members);
    await Promise.all([...rooms.map((room) => this.track(room)), this.checkMute(workspaceId)]);
    return rooms;
  }

  learnNames(members) {
    for (const m of members) this.names.set(m.user_id, m.display_name);
  }

  /** Someone new (joined after we loaded the members): fetch the names once more. */
  meet(state, userId) {
    if (this.names.has(userId) || userId === this.me.id) return;
    const workspaceId = state.room.workspace_id;
    if (!this.meeting.has(workspaceId)) {
      const done = api("GET", `/api/workspaces/${workspaceId}/members`)
        .then((members) => this.learnNames(members))
        .catch(() => {})
        .finally(() => {
          this.meeting.delete(workspaceId);
          if (state === this.active) {
            this.renderHeader();
            this.renderTyping();
          }
        });
      this.meeting.set(workspaceId, done);
    }
  }

  roomsOf(workspaceId) {
    return [...this.rooms.values()].filter((r) => r.room.workspace_id === workspaceId);
  }

  async track(room) {
    let state = this.rooms.get(room.id);
    if (!state) {
      state = new RoomState(room, this.me);
      this.rooms.set(room.id, state);
    }
    if (!state.loaded && state.joined) await this.loadHistory(state);
    if (state.joined && !this.gateway.rooms.has(room.id)) this.gateway.subscribe(room.id, () => state.lastSeq);
    return state;
  }

  async loadHistory(state) {
    try {
      const page = await api("GET", `/api/rooms/${state.id}/messages?limit=${HISTORY_PAGE}`);
      page.items.forEach((m) => state.add(m));
      state.hasMore = page.has_more;
      state.loaded = true;
      // A room seen for the first time starts read: its past is not news.
      if (state.lastRead === null) state.markRead();
    } catch (err) {
      if (err.status !== 403 && err.status !== 404) throw err;
      state.joined = false; // a public room the caller has not joined yet
    }
  }

  async loadOlder(state) {
    const first = state.messages[0];
    if (!first) return;
    const page = await api("GET", `/api/rooms/${state.id}/messages?limit=${HISTORY_PAGE}&before=${first.seq}`);
    page.items.forEach((m) => state.add(m));
    state.hasMore = page.has_more;
    const before = this.list.scrollHeight - this.list.scrollTop;
    this.renderMessages();
    this.list.scrollTop = this.list.scrollHeight - before;
  }

  async join(state) {
    await api("POST", `/api/rooms/${state.id}/join`);
    state.joined = true;
    await this.track(state.room);
    this.render();
    this.onChange();
  }

  async createRoom(workspaceId, name, isPrivate) {
    return this.track(await api("POST", `/api/workspaces/${workspaceId}/rooms`, { name, private: isPrivate }));
  }

  open(roomId) {
    const state = this.rooms.get(roomId) ?? null;
    if (this.active === state) return;
    this.active = state;
    this.render();
    if (state) this.read(state);
  }

  read(state) {
    if (state.joined && !document.hidden) {
      state.markRead();
      this.onChange();
    }
  }

  name(userId) {
    if (userId === this.me.id) return "You";
    return this.names.get(userId) ?? "Someone";
  }

  // ---- frames ----

  receive(message) {
    const state = this.rooms.get(message.room_id);
    if (!state) return;
    if (message.sender?.id && message.sender.display_name) this.names.set(message.sender.id, message.sender.display_name);
    this.stopTyping(state, message.sender?.id);
    if (!state.add(message)) return;
    if (state === this.active) {
      this.appendOrRender(message);
      this.read(state);
    }
    this.onChange();
  }

  stream(roomId, messageId, text) {
    const state = this.rooms.get(roomId);
    if (!state || state.ids.has(messageId)) return;
    state.streams.set(messageId, (state.streams.get(messageId) ?? "") + text);
    if (state !== this.active) return;
    const node = this.list?.querySelector(`[data-stream="${messageId}"]`);
    if (node) {
      node.querySelector(".body").textContent = state.streams.get(messageId);
      node.querySelector(".note").textContent = "is writing…";
      this.stickToBottom();
    } else this.renderMessages();
  }

  /** The assistant runs tools (weather, a booking…) before it writes on: say which. */
  usingTools(frame) {
    const note = this.list?.querySelector(`[data-stream="${frame.message_id}"] .note`);
    if (note) note.textContent = `is using ${frame.tools.map((name) => name.replace("__", ": ")).join(", ")}…`;
  }

  streamFailed(frame) {
    const state = this.rooms.get(frame.room_id);
    if (!state) return;
    state.streams.delete(frame.message_id);
    if (state === this.active) this.renderMessages();
    // A stop asked by a member is not a failure; what was written arrives as ai.done.
    if (frame.detail !== "stopped") toast(`@mathia could not answer: ${frame.detail}`, "error");
  }

  stop(state, messageId) {
    this.gateway.send({ type: "ai.stop", room_id: state.id, message_id: messageId });
  }

  presence(frame) {
    const state = this.rooms.get(frame.room_id);
    if (!state) return;
    this.meet(state, frame.user_id);
    if (frame.status === "online") state.online.add(frame.user_id);
    else state.online.delete(frame.user_id);
    if (state === this.active) this.renderHeader();
  }

  typing(frame) {
    const state = this.rooms.get(frame.room_id);
    if (!state || frame.user_id === this.me.id) return;
    this.meet(state, frame.user_id);
    clearTimeout(state.typing.get(frame.user_id));
    state.typing.set(frame.user_id, setTimeout(() => this.stopTyping(state, frame.user_id), TYPING_SHOW_MS));
    if (state === this.active) this.renderTyping();
  }

  stopTyping(state, userId) {
    if (!state.typing.has(userId)) return;
    clearTimeout(state.typing.get(userId));
    state.typing.delete(userId);
    if (state === this.active) this.renderTyping();
  }

  frameError(frame) {
    const failed = [...this.rooms.values()].find((s) => s.pending.has(frame.ref));
    if (failed) {
      failed.pending.get(frame.ref).failed = frame.detail;
      if (failed === this.active) this.renderMessages();
    }
    if (frame.code === "muted" && failed) this.checkMute(failed.room.workspace_id);
    toast(frame.detail || frame.code, "error");
  }

  notification(frame) {
    const until = frame.until && dateTime(frame.until);
    switch (frame.kind) {
      case "moderation.muted":
        this.setMute(frame.workspace_id, frame.until);
        return toast(`You are muted in this workspace until ${until}.`, "error", 15_000);
      case "moderation.unmuted":
        this.setMute(frame.workspace_id, null);
        return toast("You can write again: your mute was lifted.");
      case "moderation.user_muted":
        if (frame.user_id === this.me.id) return; // an admin muted themselves: "moderation.muted" said it
        return toast(`${this.name(frame.user_id)} was muted until ${until}.`, "info", 10_000);
      case "reminder":
        return toast(`Reminder: ${frame.message}`, "info", 15_000);
      default:
        return toast(frame.detail ?? frame.message ?? frame.kind, "info", 10_000);
    }
  }

  /** Ask the server whether the user is muted in a workspace (a 404 means no moderation yet). */
  async checkMute(workspaceId) {
    const state = await probe(`/api/workspaces/${workspaceId}/moderation/users/${this.me.id}`).catch(() => null);
    if (state) this.setMute(workspaceId, state.muted_until);
  }

  setMute(workspaceId, until) {
    clearTimeout(this.unmuteTimer);
    if (until && new Date(until) > new Date()) this.mutes.set(workspaceId, until);
    else this.mutes.delete(workspaceId);
    this.renderBanner();
  }

  // ---- sending ----

  async send(state, body) {
    const message = {
      id: `local-${uuid()}`,
      client_id: uuid(),
      room_id: state.id,
      body,
      sender: { id: this.me.id, display_name: this.me.display_name, kind: "user" },
      created_at: new Date().toISOString(),
    };
    state.pending.set(message.client_id, message);
    if (state === this.active) this.renderMessages();
    const frame = { type: "message.send", room_id: state.id, body, client_id: message.client_id, ref: message.client_id };
    if (this.gateway.send(frame)) {
      setTimeout(() => state.pending.has(message.client_id) && this.post(state, message), ECHO_TIMEOUT_MS);
    } else await this.post(state, message);
  }

  async post(state, message) {
    try {
      this.receive(await api("POST", `/api/rooms/${state.id}/messages`, { body: message.body, client_id: message.client_id }));
    } catch (err) {
      if (!state.pending.has(message.client_id)) return;
      message.failed = err.message;
      if (err.extra?.code === "muted") this.checkMute(state.room.workspace_id);
      if (state === this.active) this.renderMessages();
    }
  }

  retry(state, message) {
    message.failed = null;
    this.post(state, message);
    this.renderMessages();
  }

  typed(state) {
    const now = Date.now();
    if (now - this.lastTypingSent < TYPING_SEND_EVERY_MS) return;
    this.lastTypingSent = now;
    this.gateway.send({ type: "typing", room_id: state.id });
  }

  // ---- drawing ----

  render() {
    const state = this.active;
    if (!state) {
      mount(this.el, h("div.empty", {}, h("p", {}, "Pick a room on the left, or create one.")));
      return;
    }
    this.header = h("header.room-header");
    this.banner = h("div.banner", { role: "status", hidden: true });
    this.list = h("div.messages", { role: "log", "aria-live": "polite", "aria-label": `Messages in ${state.room.name}`, tabindex: "0" });
    this.typingLine = h("p.typing", { "aria-live": "polite" });
    mount(this.el, this.header, this.banner, this.list, this.typingLine, state.joined ? this.composer(state) : this.joinBar(state));
    this.renderHeader();
    this.renderBanner();
    this.renderMessages();
    this.renderTyping();
  }

  renderHeader() {
    const state = this.active;
    if (!state || !this.header) return;
    const online = [...state.online].filter((id) => id !== this.me.id).map((id) => this.name(id));
    mount(
      this.header,
      h("h2", {}, state.room.private ? "🔒 " : "# ", state.room.name),
      h("p.presence", { "aria-live": "polite" }, online.length ? `Online: ${online.join(", ")}` : "Nobody else online"),
    );
  }

  renderBanner() {
    if (!this.banner) return;
    const workspaceId = this.active?.room.workspace_id;
    const until = this.mutes.get(workspaceId);
    this.banner.hidden = !until;
    this.banner.textContent = until ? `You are muted in this workspace until ${dateTime(until)}: your messages will not be sent.` : "";
    clearTimeout(this.unmuteTimer);
    // Lift the banner by itself when the mute ends.
    if (until) this.unmuteTimer = setTimeout(() => this.setMute(workspaceId, null), new Date(until) - Date.now());
  }

  renderMessages() {
    const state = this.active;
    if (!state || !this.list) return;
    const nodes = [];
    if (state.hasMore) nodes.push(h("button.link.older", { type: "button", onclick: () => this.loadOlder(state) }, "Show older messages"));
    state.messages.forEach((m) => nodes.push(this.messageNode(m)));
    state.pending.forEach((m) => nodes.push(this.messageNode(m, true)));
    state.streams.forEach((text, id) => nodes.push(this.streamNode(state, id, text)));
    if (!nodes.length) nodes.push(h("p.empty", {}, "No messages yet. Say hello, or ask @mathia something."));
    mount(this.list, nodes);
    this.list.scrollTop = this.list.scrollHeight;
  }

  appendOrRender(message) {
    const { messages, pending, streams } = this.active;
    // The message replaces its local copy (pending send or stream), which then goes.
    this.list.querySelector(`[data-client="${message.client_id}"], [data-stream="${message.id}"]`)?.remove();
    if (messages.at(-1) !== message || pending.size || streams.size) return this.renderMessages();
    this.list.querySelector(":scope > p.empty")?.remove();
    this.list.append(this.messageNode(message));
    this.stickToBottom();
  }

  stickToBottom() {
    this.list.scrollTop = this.list.scrollHeight;
  }

  messageNode(m, pending = false) {
    const kind = m.sender?.kind ?? "user";
    const mine = m.sender?.id === this.me.id && kind === "user";
    const classes = ["msg", kind, mine && "mine", pending && "pending", m.failed && "failed"].filter(Boolean).join(".");
    return h(
      `article.${classes}`,
      { dataset: pending ? { client: m.client_id } : { seq: m.seq } },
      h("header", {}, h("span.who", {}, kind === "assistant" ? "Mathia" : m.sender?.display_name ?? "Someone"), " ", h("time", { datetime: m.created_at }, time(m.created_at))),
      h("p.body", {}, linked(m.body)),
      pending && !m.failed ? h("p.note", {}, "Sending…") : null,
      m.failed
        ? h("p.note.error", {}, `Not sent: ${m.failed} `, h("button.link", { type: "button", onclick: () => this.retry(this.active, m) }, "Retry"))
        : null,
    );
  }

  streamNode(state, id, text) {
    return h(
      "article.msg.assistant.streaming",
      { dataset: { stream: id }, "aria-busy": "true" },
      h("header", {}, h("span.who", {}, "Mathia"), " ", h("span.note", {}, "is writing…")),
      h("p.body", {}, text),
      h("button.stop", { type: "button", onclick: () => this.stop(state, id) }, "■ Stop"),
    );
  }

  renderTyping() {
    const state = this.active;
    if (!state || !this.typingLine) return;
    const names = [...state.typing.keys()].map((id) => this.name(id));
    this.typingLine.textContent = names.length ? `${names.join(", ")} ${names.length > 1 ? "are" : "is"} typing…` : "";
  }

  composer(state) {
    const input = h("textarea", {
      id: "composer-input",
      name: "body",
      rows: 1,
      placeholder: `Message #${state.room.name} — mention @mathia to ask the assistant`,
      "aria-label": "Message",
      value: state.draft ?? "",
      oninput: () => {
        state.draft = input.value;
        this.typed(state);
      },
      onkeydown: (event) => {
        // Enter sends, Shift+Enter makes a new line.
        if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
          event.preventDefault();
          form.requestSubmit();
        }
      },
    });
    const form = h(
      "form.composer",
      {
        onsubmit: (event) => {
          event.preventDefault();
          const body = input.value.trim();
          if (!body) return;
          input.value = state.draft = "";
          this.send(state, body);
        },
      },
      input,
      h("button.primary", { type: "submit" }, "Send"),
    );
    queueMicrotask(() => input.focus({ preventScroll: true }));
    return form;
  }

  joinBar(state) {
    return h(
      "div.composer",
      {},
      h("p", {}, "You are not in this room yet."),
      h("button.primary", { type: "button", onclick: () => this.join(state).catch((err) => toast(err.message, "error")) }, "Join room"),
    );
  }
}
