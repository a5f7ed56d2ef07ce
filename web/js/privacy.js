// The customer's privacy on their link (docs/protocol.md, Consent; docs/operations.md, Privacy):
// before joining a call they see what the salon keeps and agree (stored with the wording's
// version); from the conversation they download all their consultations as one ZIP, or ask
// for everything to be deleted (the salon's owner confirms).
import { setText } from "./i18n.js";
import { api, el } from "./page.js";

export class ConsentGate {
  constructor(box, consultationId, token) {
    this.box = box;
    this.url = `/api/consultations/${consultationId}/consent`;
    this.token = token;
    this.terms = null;
  }

  async load() {
    this.terms = await api(this.url, { token: this.token });
    const checkbox = el("input", { type: "checkbox", id: "consent-agree", testid: "consent" });
    checkbox.checked = this.terms.given !== null;
    checkbox.disabled = checkbox.checked;
    checkbox.addEventListener("change", () => this.agree(checkbox));
    this.status = el("p", { className: "message", role: "status", testid: "consent-status" });
    this.box.replaceChildren(
      el("h2", { i18n: "consent.title" }),
      el("p", { i18n: "consent.intro" }),
      el("ul", {}, ...this.terms.kept.map((what) => el("li", { i18n: `consent.kept.${what}` }))),
      el("label", { className: "check" }, checkbox, " ", el("span", { i18n: "consent.agree" })),
      this.status,
    );
    this.checkbox = checkbox;
    this.box.hidden = false;
  }

  get given() {
    return Boolean(this.terms?.given);
  }

  // Stored at once; the box is disabled only once the server has it (what tests wait for).
  async agree(checkbox) {
    if (!checkbox.checked || this.saving) return;
    this.saving = true;
    try {
      const { given } = await api(this.url, { method: "POST", token: this.token, json: { version: this.terms.version } });
      this.terms.given = given;
      checkbox.checked = true;
      checkbox.disabled = true;
      setText(this.status, "consent.given");
    } catch (error) {
      checkbox.checked = false;
      setText(this.status, error.key, { message: error.message });
    } finally {
      this.saving = false;
    }
  }

  // Whether the call may be joined: the customer has agreed (else they are asked to).
  ready() {
    if (this.given) return true;
    setText(this.status, "consent.needed");
    this.checkbox?.focus();
    return false;
  }
}

export class YourData {
  constructor(box, consultationId, token) {
    this.box = box;
    this.base = `/api/consultations/${consultationId}`;
    this.token = token;
  }

  render() {
    const download = el("button", { testid: "download-everything", i18n: "privacy.download" });
    download.addEventListener("click", () => this.download(download));
    const ask = el("button", { testid: "request-deletion", i18n: "privacy.delete" });
    const confirm = el("div", { className: "confirm", testid: "confirm-deletion-request", hidden: true },
      el("p", { i18n: "privacy.delete.confirm" }),
      el("button", { className: "danger", testid: "confirm-deletion", i18n: "privacy.delete.yes" }),
      el("button", { testid: "cancel-deletion", i18n: "privacy.delete.no" }));
    this.status = el("p", { className: "message", role: "status", testid: "privacy-status" });
    ask.addEventListener("click", () => (confirm.hidden = false));
    confirm.querySelector("[data-testid=cancel-deletion]").addEventListener("click", () => (confirm.hidden = true));
    confirm.querySelector("[data-testid=confirm-deletion]").addEventListener("click", async () => {
      confirm.hidden = true;
      try {
        await api(`${this.base}/deletion-request`, { method: "POST", token: this.token });
        setText(this.status, "privacy.delete.requested");
        ask.disabled = true;
      } catch (error) {
        setText(this.status, error.key, { message: error.message });
      }
    });
    this.box.replaceChildren(el("h2", { i18n: "privacy.title" }), download, ask, confirm, this.status);
    this.box.hidden = false;
  }

  // A download with the link's token in a header (never in the URL): fetched, then saved.
  async download(button) {
    button.disabled = true;
    setText(this.status, "privacy.preparing");
    try {
      const response = await fetch(`${this.base}/export-all`, { headers: { Authorization: `Bearer ${this.token}` } });
      if (!response.ok) throw new Error(response.statusText);
      const url = URL.createObjectURL(await response.blob());
      const link = el("a", { href: url, download: "my-consultations.zip" });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
      setText(this.status, "");
    } catch (error) {
      setText(this.status, "error.generic", { message: error.message });
    } finally {
      button.disabled = false;
    }
  }
}
