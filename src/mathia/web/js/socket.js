// The one WebSocket that carries every open room. It reconnects with backoff and, on every
// (re)connect, resubscribes each room with after_seq = the last seq the client holds, so the
// server replays exactly what was missed.

import { accessToken, onAccessToken, refresh } from "./api.js";

const PING_EVERY_MS = 25_000;
// No frame at all for this long after a ping means the connection is dead even if the
// browser has not noticed yet (a laptop waking up, a proxy dropping the flow).
const PONG_TIMEOUT_MS = 10_000;
const BACKOFF_MAX_MS = 15_000;

export class Gateway {
  constructor() {
    this.ws = null;
    this.handlers = new Map();
    this.rooms = new Map(); // room_id -> () => last seq held
    this.attempt = 0;
    this.stopped = true;
    this.state = "offline";
    this.timers = {};
    this.latestToken = null;
    // The server closes a socket when its token expires (4401); a refreshed token, sent on
    // the open socket, keeps it alive instead.
    onAccessToken((token) => {
      this.latestToken = token;
      this.send({ type: "auth", token });
    });
  }

  /** `fn(frame)` for frames of `type`; type "state" reports "connecting" | "online" | "offline". */
  on(type, fn) {
    if (!this.handlers.has(type)) this.handlers.set(type, new Set());
    this.handlers.get(type).add(fn);
  }

  emit(type, frame) {
    this.handlers.get(type)?.forEach((fn) => fn(frame));
  }

  start() {
    this.stopped = false;
    window.addEventListener("online", this.onOnline);
    this.connect();
  }

  stop() {
    this.stopped = true;
    window.removeEventListener("online", this.onOnline);
    Object.values(this.timers).forEach(clearTimeout);
    this.ws?.close(1000);
    this.ws = null;
    this.setState("offline");
  }

  onOnline = () => {
    if (this.state !== "online") this.reconnectNow();
  };

  setState(state) {
    if (state === this.state) return;
    this.state = state;
    this.emit("state", state);
  }

  async connect() {
    if (this.stopped) return;
    this.setState("connecting");
    let token;
    try {
      token = await accessToken();
    } catch (err) {
      if (err.status === 401) return this.stop(); // the session is gone; the app shows sign-in
      return this.retry();
    }
    if (this.stopped) return;
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}/ws?token=${encodeURIComponent(token)}`);
    this.ws = ws;
    ws.onopen = () => {
      this.setState("online");
      // A refresh that landed while this socket was connecting: hand the socket the new token.
      if (this.latestToken && this.latestToken !== token) this.send({ type: "auth", token: this.latestToken });
      for (const [roomId, lastSeq] of this.rooms) this.sendSubscribe(roomId, lastSeq());
      this.heartbeat();
    };
    ws.onmessage = (event) => {
      this.heartbeat();
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      if (frame.type === "subscribed") this.attempt = 0; // the server accepts us: reset backoff
      this.emit(frame.type, frame);
    };
    ws.onclose = async (event) => {
      if (this.ws !== ws) return;
      this.ws = null;
      clearTimeout(this.timers.ping);
      clearTimeout(this.timers.pong);
      if (this.stopped) return;
      this.setState("connecting");
      if (event.code === 4401) {
        // The access token expired under us: get a new one before trying again.
        try {
          await refresh();
        } catch (err) {
          if (err.status === 401) return this.stop();
        }
      }
      this.retry();
    };
  }

  retry() {
    if (this.stopped) return;
    const base = Math.min(BACKOFF_MAX_MS, 500 * 2 ** this.attempt);
    this.attempt += 1;
    clearTimeout(this.timers.retry);
    this.timers.retry = setTimeout(() => this.connect(), base / 2 + Math.random() * (base / 2));
  }

  reconnectNow() {
    clearTimeout(this.timers.retry);
    this.attempt = 0;
    if (this.ws) this.ws.close(4000);
    else this.connect();
  }

  heartbeat() {
    clearTimeout(this.timers.ping);
    clearTimeout(this.timers.pong);
    this.timers.ping = setTimeout(() => {
      this.send({ type: "ping" });
      this.timers.pong = setTimeout(() => this.ws?.close(4000), PONG_TIMEOUT_MS);
    }, PING_EVERY_MS);
  }

  /** Send a frame now; false when the socket is not open (the caller decides what to do). */
  send(frame) {
    if (this.ws?.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  sendSubscribe(roomId, afterSeq) {
    const frame = { type: "subscribe", room_id: roomId };
    if (afterSeq !== null && afterSeq !== undefined) frame.after_seq = afterSeq;
    this.send(frame);
  }

  /** Follow a room; `lastSeq()` is asked on every (re)connect. */
  subscribe(roomId, lastSeq) {
    this.rooms.set(roomId, lastSeq);
    this.sendSubscribe(roomId, lastSeq());
  }
}
