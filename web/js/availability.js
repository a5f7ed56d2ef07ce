// Settings page: the availability customers book from (/book), for the salon or a member of
// staff (by account), in the salon's time zone: a weekly pattern (one interval a
// day here; the API takes three), slot length, buffer, days ahead, notice, the cut-off for
// changes, and exceptions (a date closed, or open other hours).
import { setText } from "./i18n.js";
import { api, el } from "./page.js";

const DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
let panel;

function field(name, label, props) {
  const input = el("input", { name, ...props });
  input.dataset.testid = `availability-${name}`;
  return el("label", {}, el("span", { i18n: label }), input);
}

// "2026-12-25" closes the day; "2026-12-24 10:00-14:00" opens it those hours.
function parseExceptions(text) {
  const exceptions = {};
  for (const line of text.split("\n").map((l) => l.trim()).filter(Boolean)) {
    const [date, span] = line.split(/\s+/);
    exceptions[date] = span ? [span.split("-")] : [];
  }
  return exceptions;
}

function showExceptions(exceptions) {
  return Object.entries(exceptions)
    .map(([date, spans]) => (spans.length ? `${date} ${spans[0].join("-")}` : date))
    .join("\n");
}

// Whose times: the salon's, or a member of staff's (their account: bookings of it are theirs).
async function resourceChoice(resource) {
  const { staff } = await api("/api/staff");
  const select = el("select", { name: "resource" }, el("option", { value: "salon", i18n: "avail.salon" }));
  for (const member of staff) select.append(el("option", { value: member.id }, member.name));
  select.value = resource;
  select.dataset.testid = "availability-resource";
  select.addEventListener("change", () => load(select.value));
  return el("label", {}, el("span", { i18n: "avail.resource" }), select);
}

async function load(resource = "salon") {
  let current;
  try {
    current = await api(`/api/availability?resource=${encodeURIComponent(resource)}`);
  } catch {
    return; // not signed in: the page says so
  }
  const av = current.availability ?? { weekly: {}, slot_minutes: 30, buffer_minutes: 0, days_ahead: 14,
    exceptions: {}, notice_minutes: 60, cutoff_hours: 24 };
  const form = el("form", { className: "form" });
  form.append(
    el("h2", { i18n: "avail.title" }),
    el("p", { className: "muted", i18n: "avail.intro" }),
    await resourceChoice(resource),
  );
  const rows = DAYS.map((day) => {
    const [open, close] = (av.weekly[day] || [])[0] || ["", ""];
    const tr = el("tr", {}, el("th", { i18n: `dash.day.${day}` }));
    for (const [part, value] of [["open", open], ["close", close]]) {
      const input = el("input", { type: "time", name: `${day}-${part}`, value });
      input.dataset.testid = `availability-${day}-${part}`;
      tr.append(el("td", {}, input));
    }
    return tr;
  });
  form.append(
    el("table", { className: "hours" }, el("tbody", {}, ...rows)),
    field("slot_minutes", "avail.slot", { type: "number", min: 5, max: 480, value: av.slot_minutes }),
    field("buffer_minutes", "avail.buffer", { type: "number", min: 0, max: 240, value: av.buffer_minutes }),
    field("days_ahead", "avail.days", { type: "number", min: 1, max: 366, value: av.days_ahead }),
    field("notice_minutes", "avail.notice", { type: "number", min: 0, value: av.notice_minutes }),
    field("cutoff_hours", "avail.cutoff", { type: "number", min: 0, step: "any", value: av.cutoff_hours }),
  );
  const exceptions = el("textarea", { name: "exceptions", rows: 3, value: showExceptions(av.exceptions) });
  exceptions.dataset.testid = "availability-exceptions";
  const message = el("p", { className: "message", role: "status" });
  message.dataset.testid = "availability-message";
  const save = el("button", { className: "primary", i18n: "avail.save" });
  save.dataset.testid = "availability-save";
  form.append(
    el("label", {}, el("span", { i18n: "avail.exceptions" }), exceptions),
    el("p", { className: "muted" }, el("span", { i18n: "avail.timezone" }), " ", current.timezone),
    message,
    save,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const weekly = {};
    for (const day of DAYS) {
      const open = form[`${day}-open`].value;
      const close = form[`${day}-close`].value;
      if (open && close) weekly[day] = [[open, close]];
    }
    try {
      await api("/api/availability", { method: "PUT", json: {
        resource: form.resource.value,
        weekly,
        slot_minutes: Number(form.slot_minutes.value),
        buffer_minutes: Number(form.buffer_minutes.value),
        days_ahead: Number(form.days_ahead.value),
        notice_minutes: Number(form.notice_minutes.value),
        cutoff_hours: Number(form.cutoff_hours.value),
        exceptions: parseExceptions(form.exceptions.value),
      } });
      setText(message, "avail.saved");
    } catch (error) {
      setText(message, "dash.failed", { message: error.message });
    }
  });
  panel.replaceChildren(form);
  panel.hidden = false;
}

// The owner's only (settings.js starts it): PUT /api/availability takes the owner's.
export function startAvailability() {
  panel = document.querySelector("[data-testid=availability-admin]");
  if (panel) return load();
}
