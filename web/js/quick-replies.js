// The salon's quick replies under a message box (the console's chat, the inbox's reply): a
// click puts the reply's text into the box, to send as it is or after an edit.
import { api, el } from "./page.js";

export class QuickReplies {
  constructor(container, input, token = null) {
    this.container = container;
    this.input = input;
    this.token = token;
  }

  async load() {
    let replies = [];
    try {
      replies = (await api("/api/quick-replies", { token: this.token })).quick_replies;
    } catch {
      // None to offer: the box works without them.
    }
    this.container.replaceChildren(
      ...replies.map((reply) => {
        const button = el("button", { type: "button", className: "chip", testid: "quick-reply", title: reply.text });
        button.textContent = reply.text;
        button.addEventListener("click", () => this.insert(reply.text));
        return button;
      }),
    );
    this.container.hidden = replies.length === 0;
  }

  insert(text) {
    const current = this.input.value.trim();
    this.input.value = current ? `${current} ${text}` : text;
    this.input.focus();
  }
}
