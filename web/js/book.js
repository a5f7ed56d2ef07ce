// The public booking page (/book): free slots in the customer's own time zone, a name and an
// email or phone, and the consultation's link at once. With ?move=<booking>#t=<link token>,
// the same page moves that booking to the slot chosen.
import { dateLocale, language, setText, startI18n } from "./i18n.js";

const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
const params = new URLSearchParams(location.search);
const moving = params.get("move");
const token = new URLSearchParams(location.hash.slice(1)).get("t");
const $ = (id) => document.querySelector(`[data-testid=${id}]`);
let chosen = null;

function when(iso, options) {
  return new Intl.DateTimeFormat(dateLocale(), { timeZone: zone, ...options }).format(new Date(iso));
}

function showError(body) {
  const code = body?.error?.code ?? "internal";
  setText($("booking-error"), `error.${code}`, { message: body?.error?.message ?? "" });
  $("booking-error").hidden = false;
}

async function loadSlots() {
  const from = new Date();
  const to = new Date(from.getTime() + 60 * 24 * 3600 * 1000);
  const response = await fetch(`/api/slots?from=${encodeURIComponent(from.toISOString())}&to=${encodeURIComponent(to.toISOString())}`);
  const body = await response.json();
  const days = $("slots");
  days.replaceChildren();
  if (!response.ok) {
    $("no-slots").hidden = false;
    return;
  }
  $("no-slots").hidden = body.slots.length > 0;
  let list = null;
  let day = null;
  for (const slot of body.slots) {
    const label = when(slot.start, { weekday: "long", day: "numeric", month: "long" });
    if (label !== day) {
      day = label;
      const heading = document.createElement("h2");
      heading.textContent = label;
      list = document.createElement("div");
      list.className = "slot-list";
      days.append(heading, list);
    }
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.testid = "slot";
    button.dataset.start = slot.start;
    button.textContent = when(slot.start, { hour: "2-digit", minute: "2-digit" });
    button.addEventListener("click", () => choose(slot.start, button));
    list.append(button);
  }
}

async function choose(start, button) {
  for (const other of document.querySelectorAll("[data-testid=slot]")) other.setAttribute("aria-pressed", "false");
  button.setAttribute("aria-pressed", "true");
  chosen = start;
  $("booking-error").hidden = true;
  if (moving) {
    await move(start);
    return;
  }
  setText($("chosen"), "book.chosen", { time: when(start, { dateStyle: "full", timeStyle: "short" }) });
  $("book-form").hidden = false;
}

async function move(start) {
  const response = await fetch(`/api/bookings/${encodeURIComponent(moving)}/move`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
    body: JSON.stringify({ start }),
  });
  const body = await response.json();
  if (!response.ok) {
    showError(body);
    return;
  }
  done(body.start, null);
}

function done(start, link) {
  $("booking-error").hidden = true;
  $("book-form").hidden = true;
  $("slots").hidden = true;
  $("booked").hidden = false;
  setText($("booked-time"), "book.at", { time: when(start, { dateStyle: "full", timeStyle: "short" }), zone });
  const anchor = $("booked-link");
  anchor.hidden = !link;
  if (link) {
    anchor.href = link;
    anchor.textContent = link;
  }
}

$("book-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const body = {
    start: chosen,
    customer_name: form.elements.name.value,
    customer_email: form.elements.email.value || null,
    customer_phone: form.elements.phone.value || null,
    customer_language: language(),
    customer_zone: zone,
  };
  $("book").disabled = true;
  try {
    const response = await fetch("/api/bookings", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    const result = await response.json();
    if (!response.ok) {
      showError(result);
      if (result.error?.code === "slot-taken") await loadSlots();
      return;
    }
    done(result.booking.start, result.customer_link);
  } finally {
    $("book").disabled = false;
  }
});

await startI18n();
setText($("book-zone"), moving ? "book.move-zone" : "book.zone", { zone });
document.addEventListener("languagechange", loadSlots);
await loadSlots();
