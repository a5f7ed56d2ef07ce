// The staff inbox (docs/pages.md): every conversation, unread customer messages first with
// their counts, the last message and its time; live over /ws/inbox; search by name or
// reference; a conversation opens beside the list to answer without the call's console.
import { setText, t } from "./i18n.js";
import { $, api, el, when } from "./page.js";
import { BACKOFF_MS } from "./call-session.js";
import { Chat } from "./chat.js";
import { QuickReplies } from "./quick-replies.js";

const PAGE = 50;
const SEARCH_DELAY_MS = 250;

// One open conversation, as Chat sees a session: the history over HTTP, live events from the
// inbox's socket, answers and read marks over HTTP (as the salon's side, "stylist").
class InboxConversation extends EventTarget {
  constructor(item) {
    super();
    this.consultation = { id: item.id, customer_name: item.customer_name };
  }

  async load() {
    const { history } = await api(`/api/consultations/${this.consultation.id}/messages`);
    this.dispatchEvent(new CustomEvent("welcome", { detail: { history } }));
  }

  chat(text, id) {
    api(`/api/consultations/${this.consultation.id}/messages`, { method: "POST", json: { text, id } })
      .then(({ message }) => this.deliver(message))
      .catch((error) => this.dispatchEvent(new CustomEvent("failed", { detail: error })));
    return true;
  }

  read(seq) {
    api(`/api/consultations/${this.consultation.id}/read`, { method: "POST", json: { seq } }).catch(() => {});
    return true;
  }

  deliver(message) {
    this.dispatchEvent(new CustomEvent("message", { detail: message }));
  }
}

// What the message is when it is not only words (a photo, a voice message, a clip, a file),
// then its words.
function summary(last) {
  if (!last.kind) return last.text;
  const kind = t(`inbox.kind.${last.kind}`);
  return last.text ? t("inbox.kind_text", { kind, text: last.text }) : kind;
}

// The kind the inbox's summary keeps (consult/recording/inbox.py), from a delivered message.
function kindOf(message) {
  if (message.still) return "photo";
  return message.attachment ? message.attachment.kind : null;
}

function order(a, b) {
  if ((a.unread > 0) !== (b.unread > 0)) return a.unread > 0 ? -1 : 1;
  const at = (item) => item.last_message?.at || item.created_at;
  return at(b).localeCompare(at(a));
}

export class Inbox {
  // staff (js/staff.js): whose each conversation is, for its label.
  constructor(alerts, staff = null) {
    this.alerts = alerts;
    this.staff = staff;
    this.items = [];
    this.total = 0;
    this.open = null; // {id, session}
    this.attempt = 0;
    let timer = null;
    $("inbox-search").addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(() => this.load(), SEARCH_DELAY_MS);
    });
    document.addEventListener("languagechange", () => this.render());
  }

  async start() {
    await this.load();
    this.connect();
  }

  async load() {
    const q = $("inbox-search").value.trim();
    const query = new URLSearchParams({ limit: String(PAGE) });
    if (q) query.set("q", q);
    const body = await api(`/api/inbox?${query}`);
    // An event newer than this page of the inbox (it was read before the event's change)
    // arrived meanwhile: its snapshot stays, and the total follows it.
    let total = body.unread;
    const known = new Map(this.items.map((item) => [item.id, item]));
    for (const item of body.conversations) {
      const mine = known.get(item.id);
      if (mine && mine.version > item.version) {
        total += mine.unread - item.unread;
        item.unread = mine.unread;
        item.version = mine.version;
      }
    }
    this.items = body.conversations;
    this.setTotal(total);
    this.render();
  }

  connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}/ws/inbox`);
    ws.onopen = () => (this.attempt = 0);
    ws.onmessage = (event) => this.receive(JSON.parse(event.data));
    ws.onclose = () => {
      const delay = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)];
      this.attempt += 1;
      // What happened meanwhile is in a fresh page of the inbox.
      setTimeout(() => this.load().then(() => this.connect(), () => this.connect()), delay);
    };
  }

  receive(event) {
    const item = this.items.find((i) => i.id === event.consultation_id);
    if (this.open?.id === event.consultation_id) this.open.session.deliver(event.type === "message" ? event.message : event);
    if (!item) {
      // A conversation this page does not list yet: the list again, from the server.
      this.load().catch(() => {});
    } else {
      // Events are computed after their changes and may arrive out of order: an unread
      // count older than the one shown is dropped, and so is a message older than the last.
      if (event.version >= item.version) {
        this.setTotal(this.total + event.unread - item.unread);
        item.unread = event.unread;
        item.version = event.version;
      }
      const m = event.message;
      if (event.type === "message" && !(m.seq < item.last_message?.seq)) {
        item.last_message = { seq: m.seq, from: m.from, text: m.text, kind: kindOf(m), at: m.at };
      }
      this.render();
    }
    if (event.type === "message" && event.message.from === "customer") {
      const text = summary({ text: event.message.text, kind: kindOf(event.message) });
      const watching = this.open?.id === event.consultation_id;
      this.alerts.customerWrote(item?.customer_name || "", text, () => item && this.openItem(item), watching);
    }
  }

  setTotal(total) {
    this.total = Math.max(0, total);
    const badge = $("inbox-total");
    badge.hidden = this.total === 0;
    badge.textContent = String(this.total);
    this.alerts.unread(this.total);
  }

  render() {
    this.items.sort(order);
    $("inbox-empty").hidden = this.items.length > 0;
    $("inbox-list").replaceChildren(...this.items.map((item) => this.row(item)));
  }

  row(item) {
    const name = el("strong", { className: "name" });
    name.textContent = item.customer_ref ? `${item.customer_name} (${item.customer_ref})` : item.customer_name;
    const time = el("span", { className: "muted time" });
    time.textContent = when(item.last_message?.at || item.created_at);
    const last = el("span", { className: "last", testid: "inbox-last" });
    if (item.last_message) {
      const text = summary(item.last_message);
      last.textContent = item.last_message.from === "stylist" ? t("inbox.you", { text }) : text;
    } else setText(last, "inbox.no_messages");
    const head = el("span", { className: "head" }, name, time);
    if (this.staff) {
      const whose = el("span", { className: "muted whose", testid: "inbox-whose" });
      whose.textContent = this.staff.whose(item.assigned_to);
      head.append(whose);
    }
    const button = el("button", { type: "button", className: "inbox-open" }, head, last);
    if (item.unread > 0) {
      const badge = el("span", { className: "unread", testid: "inbox-unread" });
      badge.textContent = String(item.unread);
      head.append(badge);
    }
    button.addEventListener("click", () => this.openItem(item));
    const li = el("li", { testid: "inbox-item" }, button);
    li.dataset.id = item.id;
    li.classList.toggle("unread-item", item.unread > 0);
    li.classList.toggle("open", this.open?.id === item.id);
    return li;
  }

  // The conversation beside the list: its messages (the customer's marked read as they show),
  // the quick replies and a reply box.
  openItem(item) {
    const panel = $("inbox-conversation");
    const session = new InboxConversation(item);
    this.open = { id: item.id, session };
    const title = el("h2");
    title.textContent = item.customer_name;
    const record = el("a", { href: `/r/${item.id}`, testid: "inbox-record", i18n: "dash.open_record" });
    const list = el("ol", { className: "chat-list", testid: "inbox-messages" });
    list.setAttribute("aria-live", "polite");
    const quick = el("div", { className: "quick-replies", testid: "quick-replies" });
    const input = el("input", { autocomplete: "off", testid: "inbox-reply" });
    input.placeholder = t("chat.placeholder");
    input.setAttribute("aria-label", t("chat.placeholder"));
    const photo = el("input", { type: "file", accept: "image/png,image/jpeg", hidden: true, testid: "inbox-photo-input" });
    const attach = el("label", { className: "attach button" }, el("span", { i18n: "chat.photo" }), photo);
    const send = el("button", { className: "primary", testid: "inbox-send", i18n: "chat.send" });
    const failed = el("p", { className: "message", role: "alert", testid: "inbox-failed", hidden: true });
    const form = el("form", { className: "chat-form" }, attach, input, send);
    panel.replaceChildren(el("div", { className: "inbox-conversation-head" }, title, record), list, failed, quick, form);
    panel.hidden = false;
    session.addEventListener("failed", (event) => {
      failed.hidden = false;
      setText(failed, event.detail.key, { message: event.detail.message });
    });
    new Chat(session, "stylist", null, { list, form, input, photo });
    new QuickReplies(quick, input).load();
    session.load().catch((error) => {
      failed.hidden = false;
      setText(failed, error.key, { message: error.message });
    });
    this.render();
    input.focus();
  }
}
