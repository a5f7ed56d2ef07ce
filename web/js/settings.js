// The settings page (staff): staff accounts and one's own password and API keys
// (js/accounts.js); the owner's opening hours and away message, palette and the aftercare
// check-ins' default days (js/checkins.js); quick replies.
import { setText, startI18n } from "./i18n.js";
import { $, api, el } from "./page.js";
import { PaletteAdmin } from "./palette-admin.js";
import { AccountsPanel } from "./accounts.js";
import { startCheckinSettings } from "./checkins.js";
import { startAvailability } from "./availability.js";

const DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

// One opening interval a day in the form (the API takes up to three).
async function loadHours() {
  const salon = await api("/api/salon");
  const form = $("hours-form");
  form.timezone.value = salon.hours && Object.keys(salon.hours).length
    ? salon.timezone
    : Intl.DateTimeFormat().resolvedOptions().timeZone || salon.timezone;
  form.away_message.value = salon.away_message;
  $("hours-days").replaceChildren(
    ...DAYS.map((day) => {
      const [open, close] = (salon.hours[day] || [])[0] || ["", ""];
      const tr = document.createElement("tr");
      const name = document.createElement("th");
      setText(name, `dash.day.${day}`);
      tr.append(name);
      for (const [field, value] of [["open", open], ["close", close]]) {
        const td = document.createElement("td");
        const input = document.createElement("input");
        input.type = "time";
        input.name = `${day}-${field}`;
        input.value = value;
        input.dataset.testid = `hours-${day}-${field}`;
        td.append(input);
        tr.append(td);
      }
      return tr;
    }),
  );
  // Ready: typing before this would be overwritten by the loaded values.
  form.dataset.loaded = "true";
  form.querySelector("[data-testid=hours-save]").disabled = false;
}

async function saveHours(event) {
  event.preventDefault();
  const form = event.target;
  const hours = {};
  for (const day of DAYS) {
    const open = form[`${day}-open`].value;
    const close = form[`${day}-close`].value;
    if (open && close) hours[day] = [[open, close]];
  }
  try {
    await api("/api/salon", { method: "PUT", json: {
      timezone: form.timezone.value.trim(),
      hours,
      away_message: form.away_message.value,
    } });
    setText($("hours-message"), "dash.hours.saved");
  } catch (error) {
    setText($("hours-message"), "dash.failed", { message: error.message });
  }
}

// The salon's quick replies: add, edit, remove (inserted with a click in the inbox and console).
class QuickRepliesAdmin {
  constructor() {
    this.editing = null;
    $("quick-form").addEventListener("submit", (event) => this.save(event));
    $("quick-cancel").addEventListener("click", () => this.edit(null));
  }

  async load() {
    const { quick_replies: replies } = await api("/api/quick-replies");
    $("quick-list").replaceChildren(
      ...replies.map((reply) => {
        const text = el("span", { className: "text", testid: "quick-reply-text" });
        text.textContent = reply.text;
        const edit = el("button", { type: "button", testid: "quick-edit", i18n: "dash.palette.edit" });
        edit.addEventListener("click", () => this.edit(reply));
        const remove = el("button", { type: "button", className: "danger", testid: "quick-delete", i18n: "dash.palette.delete" });
        remove.addEventListener("click", () => this.remove(reply));
        return el("li", { testid: "quick-reply-item" }, text, edit, remove);
      }),
    );
  }

  edit(reply) {
    this.editing = reply;
    $("quick-form").text.value = reply ? reply.text : "";
    setText($("quick-save"), reply ? "quick.update" : "quick.add");
    $("quick-cancel").hidden = !reply;
    if (reply) $("quick-form").text.focus();
  }

  async save(event) {
    event.preventDefault();
    const text = $("quick-form").text.value;
    try {
      if (this.editing) await api(`/api/quick-replies/${this.editing.id}`, { method: "PUT", json: { text } });
      else await api("/api/quick-replies", { method: "POST", json: { text } });
      this.edit(null);
      setText($("quick-message"), "quick.saved");
      await this.load();
    } catch (error) {
      setText($("quick-message"), error.key, { message: error.message });
    }
  }

  async remove(reply) {
    try {
      await api(`/api/quick-replies/${reply.id}`, { method: "DELETE" });
      if (this.editing?.id === reply.id) this.edit(null);
      await this.load();
    } catch (error) {
      setText($("quick-message"), error.key, { message: error.message });
    }
  }
}

async function main() {
  await startI18n();
  const me = await api("/api/session");
  $("signed-out").hidden = me.staff;
  $("staff").hidden = !me.staff;
  if (!me.staff) return;
  const owner = me.role === "owner";
  for (const section of document.querySelectorAll("[data-owner-only]")) section.hidden = !owner;
  const quick = new QuickRepliesAdmin();
  const work = [quick.load(), new AccountsPanel(me).load()];
  if (owner) {
    $("hours-form").addEventListener("submit", saveHours);
    work.push(loadHours(), new PaletteAdmin().load(), startCheckinSettings($("checkin-settings-form")));
    work.push(startAvailability());
  }
  await Promise.all(work);
}

main();
