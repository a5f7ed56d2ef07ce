// Dashboard: the bookings of the weeks ahead (made on /book), in the reader's time, with the
// customer's own zone; staff cancel one at any time (the customer until the cut-off).
import { dateLocale, setText } from "./i18n.js";
import { api, el } from "./page.js";

const panel = document.querySelector("[data-testid=bookings]");

async function load() {
  let found;
  try {
    found = await api("/api/bookings");
  } catch {
    return;
  }
  const list = el("ul", { className: "quick-list" });
  for (const booking of found.bookings) {
    const time = new Intl.DateTimeFormat(dateLocale(), { dateStyle: "medium", timeStyle: "short" })
      .format(new Date(booking.start));
    const item = el("li", {}, el("span", { className: "text" },
      `${time} · ${booking.customer_name}${booking.customer_zone ? ` (${booking.customer_zone})` : ""}`));
    item.dataset.testid = "booking-item";
    if (booking.status === "cancelled") {
      item.append(el("span", { className: "muted", i18n: "bookings.cancelled" }));
    } else {
      const open = el("a", { className: "button", href: `/r/${booking.consultation_id}`, i18n: "bookings.open" });
      const cancel = el("button", { type: "button", className: "danger", i18n: "booking.cancel" });
      cancel.dataset.testid = "booking-cancel";
      cancel.addEventListener("click", async () => {
        await api(`/api/bookings/${booking.id}`, { method: "DELETE" });
        await load();
      });
      item.append(open, cancel);
    }
    list.append(item);
  }
  const empty = el("p", { className: "muted", i18n: "bookings.none" });
  empty.hidden = found.bookings.length > 0;
  const title = el("h2", {});
  setText(title, "bookings.title");
  panel.replaceChildren(title, empty, list, el("p", {}, el("a", { href: "/book", i18n: "bookings.page" })));
  panel.hidden = false;
}

if (panel) {
  load();
  document.addEventListener("languagechange", load);
}
