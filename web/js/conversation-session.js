// One side's conversation with no call (docs/protocol.md, /ws/conversation): the chat, read
// marks and the away notice, whether or not a call runs, reconnecting by itself. It speaks to
// Chat as a CallSession does: "welcome" {history, consultation, salon}, "message", chat(), read().
import { BACKOFF_MS, FINAL } from "./call-session.js";

export class ConversationSession extends EventTarget {
  constructor(token) {
    super();
    this.token = token;
    this.consultation = null;
    this.role = null;
    this.ended = false;
    this._ws = null;
    this._attempt = 0;
    this._retryTimer = null;
    const wake = () => {
      if (document.visibilityState === "visible" && !this.ended && this._ws?.readyState === WebSocket.CLOSED) this._connect();
    };
    document.addEventListener("visibilitychange", wake);
    window.addEventListener("online", wake);
  }

  open() {
    this._connect();
  }

  chat(text, id) {
    return this._send({ type: "chat", text, id });
  }

  read(seq) {
    return this._send({ type: "read", seq });
  }

  _connect() {
    clearTimeout(this._retryTimer);
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}/ws/conversation?token=${encodeURIComponent(this.token)}`);
    this._ws = ws;
    ws.onmessage = (event) => {
      if (ws === this._ws) this._handle(JSON.parse(event.data));
    };
    ws.onclose = (event) => {
      if (ws === this._ws) this._closed(event.code);
    };
  }

  _handle(message) {
    if (message.type === "conversation") {
      this._attempt = 0;
      this.role = message.role;
      this.consultation = message.consultation;
      this.dispatchEvent(new CustomEvent("welcome", { detail: message }));
    } else if (message.type === "error") {
      this.dispatchEvent(new CustomEvent("error", { detail: message }));
    } else {
      this.dispatchEvent(new CustomEvent("message", { detail: message }));
    }
  }

  _closed(code) {
    if (FINAL.has(code)) {
      this.ended = true;
      this.dispatchEvent(new CustomEvent("error", { detail: { code: FINAL.get(code) } }));
      return;
    }
    const delay = BACKOFF_MS[Math.min(this._attempt, BACKOFF_MS.length - 1)];
    this._attempt += 1;
    this._retryTimer = setTimeout(() => this._connect(), delay);
  }

  _send(message) {
    if (this._ws?.readyState !== WebSocket.OPEN) return false;
    this._ws.send(JSON.stringify(message));
    return true;
  }
}
