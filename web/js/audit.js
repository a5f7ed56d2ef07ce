// The audit log (the owner's): who did what to what, newest first, filtered by time, actor and
// subject; older pages on demand; the same filters as a CSV download (GET /api/audit.csv).
import { startI18n } from "./i18n.js";
import { $, api, el, when } from "./page.js";

let before = null;

function query() {
  const form = $("audit-form");
  const params = new URLSearchParams();
  for (const name of ["from", "to"]) {
    if (form[name].value) params.set(name, new Date(form[name].value).toISOString());
  }
  for (const name of ["actor", "subject"]) {
    if (form[name].value.trim()) params.set(name, form[name].value.trim());
  }
  return params;
}

function row(entry) {
  const cells = [when(entry.at), entry.actor, entry.action, entry.subject,
    entry.detail ? JSON.stringify(entry.detail) : ""];
  return el("tr", { testid: "audit-entry" }, ...cells.map((text) => el("td", {}, text)));
}

async function load(more) {
  const params = query();
  $("audit-csv").href = `/api/audit.csv?${params}`;
  if (more && before) params.set("before", String(before));
  try {
    const page = await api(`/api/audit?${params}`);
    const rows = page.entries.map(row);
    if (more) $("audit-rows").append(...rows);
    else $("audit-rows").replaceChildren(...rows);
    before = page.next_before;
    $("audit-more").hidden = !before;
    $("audit-empty").hidden = $("audit-rows").children.length > 0;
    $("audit-message").textContent = "";
  } catch (error) {
    $("audit-message").textContent = error.message;
  }
}

async function main() {
  await startI18n();
  const me = await api("/api/session");
  $("signed-out").hidden = me.staff;
  $("audit").hidden = !me.staff;
  if (!me.staff) return;
  $("audit-form").addEventListener("submit", (event) => {
    event.preventDefault();
    load(false);
  });
  $("audit-more").addEventListener("click", () => load(true));
  await load(false);
}

main();
