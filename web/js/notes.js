// The stylist's private notes and the summary shared with the customer, saved as they are typed.
// Every keystroke is kept in localStorage until the server has it, so a reload, a lost
// connection or a closed laptop lose nothing: the draft is saved again on the next chance.
import { setText } from "./i18n.js";
import { api } from "./page.js";

const DEBOUNCE_MS = 600;
const RETRY_MS = 3000;

export class Notes {
  constructor(token, fields) {
    this.token = token;
    this.fields = fields; // {notes: textarea, summary: textarea}
    this.status = fields.status;
    this.consultationId = null;
    // Typed before the welcome said which consultation this is: kept, and saved on load.
    this.early = new Set();
    this.timer = null;
    this.saving = false;
    for (const [name, area] of Object.entries(this.fields.areas)) {
      area.addEventListener("input", () => {
        this.keep(name, area.value);
        this.schedule(DEBOUNCE_MS);
      });
    }
    window.addEventListener("online", () => this.schedule(0));
  }

  key(name) {
    return `consult.draft.${this.consultationId}.${name}`;
  }

  keep(name, value) {
    if (this.consultationId) localStorage.setItem(this.key(name), value);
    else this.early.add(name);
    setText(this.status, "notes.unsaved");
  }

  // The server's texts, unless a draft not yet saved is waiting: then the draft wins.
  load(consultation) {
    this.consultationId = consultation.id;
    let pending = false;
    for (const name of this.early) localStorage.setItem(this.key(name), this.fields.areas[name].value);
    this.early.clear();
    for (const [name, area] of Object.entries(this.fields.areas)) {
      const draft = localStorage.getItem(this.key(name));
      if (draft !== null && draft !== consultation[name]) {
        area.value = draft;
        pending = true;
      } else if (document.activeElement !== area) {
        area.value = consultation[name] ?? "";
        localStorage.removeItem(this.key(name));
      }
    }
    if (pending) this.schedule(0);
    else setText(this.status, "notes.saved");
  }

  schedule(delay) {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.save(), delay);
  }

  async save() {
    if (this.saving || !this.consultationId) return this.schedule(DEBOUNCE_MS);
    const body = {};
    for (const [name, area] of Object.entries(this.fields.areas)) {
      if (localStorage.getItem(this.key(name)) !== null) body[name] = area.value;
    }
    if (Object.keys(body).length === 0) return;
    this.saving = true;
    setText(this.status, "notes.saving");
    try {
      const saved = await api(`/api/consultations/${this.consultationId}/notes`, { method: "PUT", token: this.token, json: body });
      for (const name of Object.keys(body)) {
        // Only forget the draft if nothing was typed while saving.
        if (this.fields.areas[name].value === saved[name]) localStorage.removeItem(this.key(name));
      }
      const stillPending = Object.keys(this.fields.areas).some((n) => localStorage.getItem(this.key(n)) !== null);
      setText(this.status, stillPending ? "notes.unsaved" : "notes.saved");
      if (stillPending) this.schedule(DEBOUNCE_MS);
    } catch {
      setText(this.status, "notes.retrying");
      this.schedule(RETRY_MS);
    } finally {
      this.saving = false;
    }
  }
}

// What the customer sees of it: the agreed design, when there is one.
export function showSummary(element, text) {
  element.hidden = !text;
  element.querySelector("[data-summary-text]").textContent = text || "";
}
