// Aftercare check-ins for staff (docs/pages.md): the dashboard's list of those due, overdue
// and answered, with "same again" or a repair in one click; a record's check-ins (schedule the
// salon's default days, add, move, remove); the salon's default days on the settings page.
import { setText, t } from "./i18n.js";
import { $, api, el, when } from "./page.js";
import { withToken } from "./stills.js";

// A datetime-local input's value for an ISO time, in the reader's zone.
function localValue(iso) {
  const d = new Date(iso);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

function answersText(answers) {
  if (!answers) return "";
  return t("checkins.answers", {
    lifting: t(answers.lifting ? "checkin.yes" : "checkin.no"),
    chipping: t(answers.chipping ? "checkin.yes" : "checkin.no"),
    comfort: answers.comfort,
  }) + (answers.text ? ` · “${answers.text}”` : "");
}

function photos(checkin, token) {
  return el("span", { className: "checkin-photos" },
    ...Object.entries(checkin.photos).map(([view, still]) => {
      const img = el("img", { src: withToken(`/api/stills/${still}/thumb`, token), alt: t(`checkin.view.${view}`) });
      img.dataset.testid = "checkin-photo";
      return img;
    }),
  );
}

// The dashboard's panel (`data-testid="checkins"`): refreshed with the dashboard.
export class CheckinBoard {
  constructor(section) {
    this.section = section;
    this.board = null;
    document.addEventListener("languagechange", () => this.render());
  }

  async refresh() {
    this.board = await api("/api/checkins");
    this.render();
  }

  render() {
    if (!this.board) return;
    const items = [
      ...this.board.overdue.map((c) => ["overdue", c]),
      ...this.board.due.map((c) => ["due", c]),
      ...this.board.answered.map((c) => ["answered", c]),
    ];
    this.section.querySelector("[data-checkins-empty]").hidden = items.length > 0;
    this.section.querySelector("[data-checkins-list]").replaceChildren(
      ...items.map(([standing, c]) => this.item(standing, c)),
    );
  }

  item(standing, c) {
    const li = el("li", { testid: "checkin-item" });
    li.dataset.standing = standing;
    li.dataset.id = c.id;
    const record = el("a", { href: `/r/${c.consultation_id}` });
    record.textContent = c.customer_ref ? `${c.customer_name} (${c.customer_ref})` : c.customer_name;
    const label = el("span", { className: "standing", testid: "checkin-standing", i18n: `checkins.standing.${standing}` });
    const due = el("span", { className: "muted" });
    due.textContent = when(c.answered_at || c.due_at);
    li.append(record, label, due);
    if (standing === "answered") {
      li.append(el("span", { testid: "checkin-answers" }, answersText(c.answers)), photos(c, null));
      for (const kind of ["same-again", "repair"]) {
        const button = el("button", { type: "button", testid: `checkin-${kind}`, i18n: `checkins.${kind}` });
        button.addEventListener("click", () => this.followUp(c, kind, li));
        li.append(button);
      }
    }
    return li;
  }

  // One click: the new consultation, its customer link ready to copy and send.
  async followUp(c, kind, li) {
    const box = el("div", { className: "links", testid: "checkin-followup" });
    try {
      const made = await api(`/api/checkins/${c.id}/follow-up`, { method: "POST", json: { kind } });
      const link = el("input", { readOnly: true, value: made.customer_link });
      link.dataset.testid = "checkin-followup-link";
      link.addEventListener("focus", () => link.select());
      const record = el("a", { href: `/r/${made.id}`, i18n: "dash.open_record" });
      box.append(el("span", { i18n: `checkins.made.${kind}` }), record, link);
    } catch (error) {
      box.append(el("span", { className: "message" }, error.message));
    }
    li.querySelector("[data-testid=checkin-followup]")?.remove();
    li.append(box);
  }
}

// A record's check-ins: for everyone who sees the record, and for staff the scheduling.
export function renderRecordCheckins(section, record, token, refresh) {
  const staff = !token;
  const list = section.querySelector("[data-record-checkins-list]");
  list.replaceChildren(
    ...record.checkins.map((c) => {
      const li = el("li", { testid: "record-checkin" });
      li.dataset.state = c.state;
      const head = el("span", {});
      setText(head, `checkins.state.${c.state}`, { when: when(c.answered_at || c.sent_at || c.due_at) });
      li.append(head);
      if (c.answers) li.append(el("span", { testid: "record-checkin-answers" }, answersText(c.answers)));
      li.append(photos(c, token));
      if (staff && c.state === "scheduled") {
        const at = el("input", { type: "datetime-local", value: localValue(c.due_at) });
        at.dataset.testid = "record-checkin-due";
        const move = el("button", { type: "button", testid: "record-checkin-move", i18n: "checkins.move" });
        move.addEventListener("click", async () => {
          await api(`/api/checkins/${c.id}`, { method: "PATCH", json: { due_at: new Date(at.value).toISOString() } });
          await refresh();
        });
        const remove = el("button", { type: "button", testid: "record-checkin-remove", i18n: "checkins.remove" });
        remove.addEventListener("click", async () => {
          await api(`/api/checkins/${c.id}`, { method: "DELETE" });
          await refresh();
        });
        li.append(at, move, remove);
      }
      return li;
    }),
  );
  section.querySelector("[data-record-checkins-staff]").hidden = !staff;
  section.hidden = !staff && record.checkins.length === 0;
  if (!staff || section.dataset.wired) return;
  section.dataset.wired = "true";
  const message = section.querySelector("[data-record-checkins-message]");
  const schedule = async (json) => {
    try {
      await api(`/api/consultations/${record.id}/checkins`, { method: "POST", json });
      setText(message, "");
      await refresh();
    } catch (error) {
      setText(message, error.key, { message: error.message });
    }
  };
  section.querySelector("[data-testid=record-checkins-schedule]").addEventListener("click", () => schedule({}));
  section.querySelector("[data-testid=record-checkins-add]").addEventListener("click", () => {
    const value = section.querySelector("[data-testid=record-checkins-at]").value;
    if (value) schedule({ due_at: new Date(value).toISOString() });
  });
}

// The settings page: the salon's default days, and when an unanswered check-in is overdue.
export async function startCheckinSettings(form) {
  const current = await api("/api/checkin-settings");
  form.days.value = current.days.join(", ");
  form.overdue_days.value = String(current.overdue_days);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const message = $("checkin-settings-message");
    const days = form.days.value.split(/[,，\s]+/).filter(Boolean).map(Number);
    try {
      await api("/api/checkin-settings", {
        method: "PUT",
        json: { days, overdue_days: Number(form.overdue_days.value) },
      });
      setText(message, "checkins.settings.saved");
    } catch (error) {
      setText(message, error.key, { message: error.message });
    }
  });
  form.dataset.loaded = "true";
}
