// Chat between the customer and the stylist (docs/protocol.md): every message is stored with a
// sequence number before it is delivered; a message the server has not acknowledged yet is kept
// here and sent again, with the same id, after a reconnect, so nothing is lost or doubled.
// `session` is the conversation's (ConversationSession): the chat needs no call.
import { FILE_ACCEPT, kindOf, renderAttachment, sendAttachment, tooLarge, VoiceRecorder, voiceName } from "./attachments.js";
import { setText, t } from "./i18n.js";
import { uploadPhoto, Viewer, withToken } from "./stills.js";

const MAX_CHARS = 2000;
// The path of a check-in's page in the salon's request (opened on this page's own origin).
const CHECKIN_LINK = /\/c\/[A-Za-z0-9_-]+\/checkin\/[0-9a-f]+/;

export class Chat {
  constructor(session, role, token, elements) {
    this.session = session;
    this.role = role;
    this.token = token;
    // {list, form, input, photo, file?, voice?, voiceStatus?, microphone?, unread?}
    this.el = elements;
    this.viewer = null;
    this.messages = new Map(); // seq -> message
    this.pending = new Map(); // id -> text, not yet acknowledged
    // id -> label of a photo, voice message or file being uploaded: never sent again as text.
    this.uploading = new Map();
    this.players = new Map(); // attachment id -> its rendered element
    this.partnerRead = 0;
    this.unread = 0;
    session.addEventListener("welcome", (event) => this.restore(event.detail.history));
    session.addEventListener("message", (event) => this.receive(event.detail));
    elements.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.send(elements.input.value);
    });
    elements.input.maxLength = MAX_CHARS;
    elements.photo.addEventListener("change", () => {
      const file = elements.photo.files[0];
      elements.photo.value = "";
      if (file) this.sendPhoto(file);
    });
    // Files and voice messages where the page has their controls (the inbox has photos only).
    if (elements.file) {
      elements.file.accept = FILE_ACCEPT;
      elements.file.addEventListener("change", () => {
        const file = elements.file.files[0];
        elements.file.value = "";
        if (file) this.sendFile(file);
      });
    }
    if (elements.voice) {
      this.recorder = new VoiceRecorder(elements.voice, elements.voiceStatus, elements.microphone);
      this.recorder.addEventListener("recorded", ({ detail }) =>
        this.sendAttachment("voice", detail.blob, voiceName(detail.type)),
      );
    }
  }

  sendFile(file) {
    const kind = kindOf(file);
    if (tooLarge(kind, file)) window.alert(t(`attach.too_large.${kind}`));
    else this.sendAttachment(kind, file, file.name);
  }

  // A voice message, clip or file goes over HTTP like a photo; the server sends it to both.
  async sendAttachment(kind, blob, name) {
    await this.upload(t(`attach.sending.${kind}`), "attach.failed", (id) =>
      sendAttachment(this.session.consultation.id, this.token, { kind, blob, name, id }), "attach.error",
    );
  }

  // A photo goes over HTTP (it can be large); the server then sends it to both as a message.
  async sendPhoto(file) {
    await this.upload(t("chat.photo_sending"), "chat.photo_failed", (id) => {
      const url = `/api/consultations/${this.session.consultation.id}/chat-photos?id=${encodeURIComponent(id)}`;
      return uploadPhoto(url, this.token, file);
    });
  }

  // Shown as pending until the server's message comes; a refusal says why.
  async upload(label, failedKey, send, errorPrefix = "error") {
    const id = crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random()}`;
    this.uploading.set(id, label);
    this.render();
    try {
      const message = await send(id);
      // The server's answer is the message: shown even when this page is not in the call.
      this.uploading.delete(id);
      if (message?.seq) this.receive({ ...message, type: "chat" });
      else this.render();
    } catch (error) {
      this.uploading.delete(id);
      this.render();
      // The most particular message there is: this kind of upload's, the error's, or failedKey's.
      const keys = error.code ? [`${errorPrefix}.${error.code}`, `error.${error.code}`] : [];
      const key = [...keys, failedKey].find((k) => t(k) !== k) || failedKey;
      window.alert(t(key, { message: error.message }));
    }
  }

  restore(history) {
    for (const entry of history) this.receive(entry);
    // Whatever was sent while offline goes again, with its id: the server keeps one copy.
    for (const [id, text] of this.pending) this.session.chat(text, id);
    this.markRead();
  }

  send(raw) {
    const text = raw.trim();
    if (!text) return;
    const id = crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random()}`;
    this.pending.set(id, text);
    this.el.input.value = "";
    this.session.chat(text, id);
    this.render();
  }

  receive(message) {
    if (message.type === "chat") {
      this.pending.delete(message.id);
      this.uploading.delete(message.id);
      const isNew = !this.messages.has(message.seq);
      this.messages.set(message.seq, message);
      if (isNew && message.from !== this.role && !this.visible()) this.unread += 1;
      this.render();
      this.markRead();
    } else if (message.type === "read" && message.by !== this.role) {
      this.partnerRead = Math.max(this.partnerRead, message.seq);
      this.render();
    }
  }

  visible() {
    // On screen: the conversation page, the open drawer, the console's chat tab.
    return this.el.list.getClientRects().length > 0 && document.visibilityState === "visible";
  }

  markRead() {
    if (!this.visible() || this.messages.size === 0) return;
    this.unread = 0;
    this.renderUnread();
    const last = Math.max(...this.messages.keys());
    if (last > (this.sentRead || 0)) {
      this.sentRead = last;
      this.session.read(last);
    }
  }

  render() {
    const items = [...this.messages.values()].sort((a, b) => a.seq - b.seq);
    const nodes = items.map((m) => this.item(m.text, m.from === this.role, m.at, m.seq));
    for (const text of [...this.pending.values(), ...this.uploading.values()]) {
      nodes.push(this.item(text, true, null, null));
    }
    this.el.list.replaceChildren(...nodes);
    this.el.list.scrollTop = this.el.list.scrollHeight;
    this.renderUnread();
  }

  item(text, mine, at, seq) {
    const li = document.createElement("li");
    li.className = mine ? "mine" : "theirs";
    li.dataset.testid = "chat-message";
    const body = document.createElement("span");
    body.className = "text";
    body.textContent = text;
    // The salon's aftercare check-in request: its link as a button on the customer's side.
    const checkin = this.role === "customer" && text.match(CHECKIN_LINK);
    if (checkin) {
      const open = document.createElement("a");
      open.className = "button";
      open.href = checkin[0];
      open.dataset.testid = "checkin-open";
      setText(open, "checkin.open");
      body.append(document.createElement("br"), open);
    }
    const still = seq === null ? null : this.messages.get(seq)?.still;
    if (still) {
      const button = document.createElement("button");
      button.className = "photo";
      button.dataset.testid = "chat-photo";
      const img = document.createElement("img");
      img.src = withToken(still.thumb_url, this.token);
      img.alt = "";
      button.append(img);
      button.addEventListener("click", () => {
        this.viewer ||= new Viewer(this.token);
        this.viewer.open(still);
      });
      body.append(button);
    }
    const attachment = seq === null ? null : this.messages.get(seq)?.attachment;
    if (attachment) {
      // The same element on every render: a voice message playing goes on playing when a
      // message or a read mark comes in.
      if (!this.players.has(attachment.id)) this.players.set(attachment.id, renderAttachment(attachment, this.token));
      body.append(this.players.get(attachment.id));
    }
    const meta = document.createElement("span");
    meta.className = "meta";
    if (seq === null) setText(meta, "chat.sending");
    else {
      const time = new Date(at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
      meta.textContent = mine && seq <= this.partnerRead ? `${time} · ${t("chat.read")}` : time;
      if (mine && seq <= this.partnerRead) meta.dataset.read = "true";
    }
    li.append(body, meta);
    return li;
  }

  renderUnread() {
    if (!this.el.unread) return;
    this.el.unread.hidden = this.unread === 0;
    this.el.unread.textContent = String(this.unread);
  }

  shown(focus = true) {
    this.markRead();
    this.render();
    if (focus) this.el.input.focus();
  }
}
