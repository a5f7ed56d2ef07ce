// The customer's booking on their conversation page (/c/<token>): when it is, in their own
// time zone, and until the salon's cut-off a way to cancel it or choose another time (/book).
import { dateLocale, setText } from "./i18n.js";

const panel = document.querySelector("[data-testid=my-booking]");
const token = location.pathname.startsWith("/c/") ? location.pathname.split("/")[2] : null;
const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
const headers = { Authorization: `Bearer ${token}` };

async function show() {
  if (!panel || !token) return;
  const response = await fetch("/api/link/booking", { headers });
  if (!response.ok) return;
  const { booking, changeable } = await response.json();
  if (!booking) return;
  const time = new Intl.DateTimeFormat(dateLocale(), { timeZone: zone, dateStyle: "full", timeStyle: "short" })
    .format(new Date(booking.start));
  const text = document.createElement("p");
  setText(text, booking.status === "cancelled" ? "booking.cancelled" : "booking.at", { time, zone });
  panel.replaceChildren(text);
  if (changeable) {
    const move = document.createElement("a");
    move.className = "button";
    move.dataset.testid = "move-booking";
    move.href = `/book?move=${encodeURIComponent(booking.id)}#t=${encodeURIComponent(token)}`;
    setText(move, "booking.move");
    const cancel = document.createElement("button");
    cancel.type = "button";
    cancel.dataset.testid = "cancel-booking";
    setText(cancel, "booking.cancel");
    cancel.addEventListener("click", async () => {
      cancel.disabled = true;
      await fetch(`/api/bookings/${encodeURIComponent(booking.id)}`, { method: "DELETE", headers });
      await show();
    });
    panel.append(move, " ", cancel);
  }
  panel.hidden = false;
}

document.addEventListener("languagechange", show);
show();
