// The staff dashboard: sign in with an account's email and password, or the staff key (an
// encrypted, HTTP-only session cookie); whose each consultation is (js/staff.js);
// the inbox first (js/inbox.js), then create a consultation, copy or open its links. Opening
// hours, quick replies and the palette are on the settings page (js/settings.js).
import { setText, startI18n, t } from "./i18n.js";
import { $, api, when } from "./page.js";
import { Inbox } from "./inbox.js";
import { StaffAlerts } from "./staff-alerts.js";
import { Staff } from "./staff.js";
import { Customers } from "./customers.js";
import { CheckinBoard } from "./checkins.js";

const REFRESH_MS = 15000;
let rows = [];
let inbox = null;
let customers = null;
let emailConfigured = true;
const staffList = new Staff();
let checkins = null;

async function copy(text, button) {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    // No clipboard permission (plain http off localhost): select it for the person to copy.
    window.prompt(t("dash.copy_customer"), text);
    return;
  }
  setText(button, "dash.copied");
  setTimeout(() => setText(button, "dash.copy_customer"), 2000);
}

// A consultation's links: copy the customer's, open the console or the record; or, once
// they expired or were revoked, make new ones.
function linkBox(c) {
  const box = document.createElement("div");
  box.className = "links";
  if (c.customer_link && c.stylist_link) {
    const copyButton = document.createElement("button");
    copyButton.dataset.testid = "copy-customer-link";
    setText(copyButton, "dash.copy_customer");
    copyButton.addEventListener("click", () => copy(c.customer_link, copyButton));
    const open = document.createElement("a");
    open.href = c.stylist_link;
    open.target = "_blank";
    open.rel = "noopener noreferrer";
    open.dataset.testid = "open-console";
    setText(open, "dash.open_console");
    // The customer's link as text to copy by hand, not to open: staff would join as the customer.
    const customer = document.createElement("input");
    customer.readOnly = true;
    customer.value = c.customer_link;
    customer.dataset.testid = "customer-link";
    customer.addEventListener("focus", () => customer.select());
    const record = document.createElement("a");
    record.href = `/r/${c.id}`;
    record.dataset.testid = "open-record";
    setText(record, "dash.open_record");
    box.append(copyButton, open, record, customer);
  } else {
    const gone = document.createElement("span");
    setText(gone, "dash.link_gone");
    const renew = document.createElement("button");
    renew.dataset.testid = "new-links";
    setText(renew, "dash.new_links");
    renew.addEventListener("click", async () => {
      try {
        await api(`/api/consultations/${c.id}/revoke-links`, { method: "POST" });
        await refresh();
      } catch (error) {
        setText(gone, "dash.failed", { message: error.message });
      }
    });
    box.append(gone, renew);
  }
  return box;
}

function render() {
  const body = $("consultations").querySelector("tbody");
  $("empty").hidden = rows.length > 0;
  $("consultations").hidden = rows.length === 0;
  body.replaceChildren(
    ...rows.map((c) => {
      const tr = document.createElement("tr");
      tr.dataset.testid = "consultation-row";
      tr.dataset.id = c.id;
      const cells = [
        c.customer_ref ? `${c.customer_name} (${c.customer_ref})` : c.customer_name,
        t(`dash.status.${c.status}`),
        when(c.created_at),
        when(c.last_activity_at),
      ];
      for (const text of cells) {
        const td = document.createElement("td");
        td.textContent = text;
        tr.append(td);
      }
      tr.firstChild.append(emailBox(c), staffList.assignBox(c, refresh));
      const links = document.createElement("td");
      const box = linkBox(c);
      links.append(box);
      tr.append(links);
      return tr;
    }),
  );
}

// The customer's email under their name: the address (edited with a prompt), and whether the
// last email to it could not be delivered.
function emailBox(c) {
  const box = document.createElement("div");
  box.className = "muted";
  const address = document.createElement("span");
  address.dataset.testid = "row-email";
  address.textContent = c.customer_email || "";
  const edit = document.createElement("button");
  edit.className = "link";
  edit.dataset.testid = "edit-email";
  setText(edit, "dash.email.edit");
  edit.addEventListener("click", async () => {
    const value = window.prompt(t("dash.create.email"), c.customer_email || "");
    if (value === null) return;
    try {
      await api(`/api/consultations/${c.id}`, { method: "PATCH", json: { customer_email: value } });
      await refresh();
    } catch (error) {
      setText(address, error.key, { message: error.message });
    }
  });
  box.append(address, " ", edit);
  if (c.email_undelivered) {
    const failed = document.createElement("p");
    failed.className = "message";
    failed.dataset.testid = "email-undelivered";
    setText(failed, "dash.email.undelivered", {
      address: c.email_undelivered.recipient,
      reason: c.email_undelivered.error,
    });
    box.append(failed);
  }
  return box;
}

// The scheduled backups' last success and failure (GET /api/backups).
async function loadBackups() {
  const b = await api("/api/backups");
  const last = $("backup-last");
  if (!b.enabled) setText(last, "dash.backup.off");
  else if (b.running) setText(last, "dash.backup.running");
  else if (b.last_success_at) {
    setText(last, "dash.backup.last", {
      when: when(b.last_success_at),
      file: b.last_success_file,
      size: (b.last_success_bytes / 1e6).toFixed(1),
    });
  } else setText(last, "dash.backup.none");
  const failure = $("backup-failure");
  failure.hidden = !b.last_failure_at;
  if (b.last_failure_at) {
    setText(failure, "dash.backup.failed", { when: when(b.last_failure_at), message: b.last_failure });
  }
}

async function refresh() {
  try {
    const listing = await api("/api/consultations");
    rows = listing.consultations;
    emailConfigured = listing.email_configured;
    $("email-not-configured").hidden = emailConfigured;
    render();
    checkins ||= new CheckinBoard($("checkins"));
    await Promise.all([staffList.owner ? loadBackups() : null, checkins.refresh()]);
  } catch (error) {
    if (error.status === 401) showSignIn();
  }
}

function showSignIn() {
  $("sign-in").hidden = false;
  $("staff").hidden = true;
  $("sign-out").hidden = true;
  $("settings-link").hidden = true;
  $("audit-link").hidden = true;
  $("whoami").hidden = true;
}

async function showStaff() {
  $("sign-in").hidden = true;
  $("staff").hidden = false;
  $("sign-out").hidden = false;
  $("settings-link").hidden = false;
  await staffList.load();
  $("audit-link").hidden = !staffList.owner;
  // The backups are the owner's to watch.
  $("backups").hidden = !staffList.owner;
  $("whoami").hidden = false;
  $("whoami").textContent = staffList.whoami();
  inbox ||= new Inbox(new StaffAlerts($("notify-enable")), staffList);
  customers ||= new Customers($("customers"));
  await Promise.all([refresh(), inbox.start(), customers.load()]);
}

async function main() {
  await startI18n();
  document.addEventListener("languagechange", render);
  $("sign-in-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const email = $("staff-email").value.trim();
      const json = email
        ? { email, password: $("staff-password").value }
        : { staff_key: $("staff-key").value };
      await api("/api/session", { method: "POST", json });
      for (const id of ["staff-key", "staff-password"]) $(id).value = "";
      setText($("sign-in-message"), "");
      await showStaff();
    } catch (error) {
      const wrong = error.status === 401 && !$("staff-email").value.trim();
      setText($("sign-in-message"), wrong ? "dash.signin.wrong" : error.key, { message: error.message });
    }
  });
  $("sign-out").addEventListener("click", async () => {
    await api("/api/session", { method: "DELETE" });
    showSignIn();
  });
  $("create-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = new FormData(event.target);
    const body = { customer_name: form.get("customer_name").trim() };
    if (form.get("customer_ref")) body.customer_ref = form.get("customer_ref").trim();
    if (form.get("notes")) body.notes = form.get("notes");
    if (form.get("customer_email").trim()) body.customer_email = form.get("customer_email").trim();
    if (form.get("customer_language")) body.customer_language = form.get("customer_language");
    if (form.get("scheduled_at")) body.scheduled_at = new Date(form.get("scheduled_at")).toISOString();
    try {
      const created = await api("/api/consultations", { method: "POST", json: body });
      event.target.reset();
      setText($("create-message"), "dash.create.done", { name: created.customer_name });
      // Its links right here, not at the end of the list below.
      $("created").replaceChildren(linkBox(created));
      $("created").hidden = false;
      await refresh();
      // Under the form, which the cards above it (inbox, check-ins, ...) can push to the
      // bottom of the screen: bring them into view once the page has settled.
      $("created").scrollIntoView({ block: "nearest" });
    } catch (error) {
      setText($("create-message"), error.key, { message: error.message });
    }
  });
  const { staff } = await api("/api/session");
  if (staff) await showStaff();
  else showSignIn();
  setInterval(() => {
    if (!$("staff").hidden) refresh();
  }, REFRESH_MS);
}

main();
