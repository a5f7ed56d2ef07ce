// A consultation's record for review: staff at /r/<id> (signed in), the customer at
// /c/<token>/record. Stills (full-resolution viewer, original download), summary, chat, and for
// staff the private notes and every consultation of the same customer.
import { renderAttachment } from "./attachments.js";
import { setText, startI18n } from "./i18n.js";
import { $, api, when } from "./page.js";
import { renderEarlier, StillStrip, withToken } from "./stills.js";
import { chip } from "./palette.js";
import { deleteBox } from "./deletion.js";
import { renderRecordCheckins } from "./checkins.js";

const parts = location.pathname.split("/");
const token = parts[1] === "c" ? parts[2] : null;
const consultationId = parts[1] === "r" ? parts[2] : null;

// Staff and the stylist see where the customer's emails go, and the last one that could not
// be delivered (the customer never gets this part of the record).
function renderEmail(email) {
  $("record-email").hidden = !email?.address;
  $("record-email-undelivered").hidden = true;
  if (!email?.address) return;
  const state = !email.configured
    ? "dash.email.not_configured"
    : email.unsubscribed
      ? "dash.email.unsubscribed"
      : null;
  if (state) setText($("record-email"), state, { address: email.address });
  else $("record-email").textContent = email.address;
  const failed = email.emails.find((e) => e.status === "failed");
  const last = email.emails.find((e) => e.status !== "cancelled");
  if (failed && failed === last && failed.recipient === email.address) {
    $("record-email-undelivered").hidden = false;
    setText($("record-email-undelivered"), "dash.email.undelivered", {
      address: failed.recipient,
      reason: failed.error,
    });
  }
}

function render(record) {
  document.title = record.customer_name;
  $("record-title").textContent = record.customer_name;
  $("record-when").textContent = when(record.scheduled_at || record.created_at, "");
  $("record-summary").textContent = record.summary || "–";
  renderEmail(record.email);
  $("record-notes-card").hidden = record.notes === undefined;
  $("record-notes").textContent = record.notes || "–";
  const swatchItems = (entries, testid) =>
    entries.map((entry) => {
      const li = document.createElement("li");
      li.dataset.testid = testid;
      li.dataset.hex = entry.swatch.hex;
      const s = entry.swatch;
      const text = document.createElement("span");
      text.textContent = `${s.name} ${[s.brand, s.code].filter(Boolean).join(" ")} · ${s.hex} · ${when(entry.at, "")}`;
      li.append(chip(s, "medium"), text);
      return li;
    });
  $("record-chosen").replaceChildren(...swatchItems(record.swatches_chosen, "record-chosen-swatch"));
  $("record-shown").replaceChildren(...swatchItems(record.swatches_shown, "record-shown-swatch"));
  $("record-swatches-card").hidden = !record.swatches_shown.length && !record.swatches_chosen.length;
  const strip = new StillStrip(token);
  for (const still of record.stills.slice().reverse()) strip.add(still);
  $("stills-empty").hidden = record.stills.length > 0;
  $("record-chat-empty").hidden = record.messages.length > 0;
  $("record-chat").replaceChildren(
    ...record.messages.map((m) => {
      const li = document.createElement("li");
      li.className = m.from === "stylist" ? "mine" : "theirs";
      li.dataset.testid = "record-chat-message";
      const text = document.createElement("span");
      text.className = "text";
      text.textContent = m.text;
      if (m.still) {
        const photo = document.createElement("button");
        photo.className = "photo";
        photo.dataset.testid = "record-chat-photo";
        const img = document.createElement("img");
        img.src = withToken(m.still.thumb_url, token);
        img.alt = "";
        photo.append(img);
        photo.addEventListener("click", () => strip.viewer.open(m.still));
        text.append(photo);
      }
      if (m.attachment) text.append(renderAttachment(m.attachment, token));
      const meta = document.createElement("span");
      meta.className = "meta";
      setText(meta, `record.from.${m.from}`, { time: when(m.at, "") });
      li.append(text, meta);
      return li;
    }),
  );
  if (record.notes !== undefined && !token) offerDeletion(record, strip);
  renderRecordings(record.recordings);
  renderRecordCheckins($("record-checkins"), record, token, async () => render(await api(`/api/consultations/${record.id}`, { token })));
  $("record-export").href = withToken(`/api/consultations/${record.id}/export`, token);
  // Only the salon's export holds the private notes: say so, and offer one without them.
  const staff = record.notes !== undefined && !token;
  $("record-export-note").hidden = !staff;
  $("record-export-without-notes").hidden = !staff;
  $("record-export-without-notes").href = `/api/consultations/${record.id}/export?without=notes`;
  // Staff: the links to send, here too (after "Same again" this is where the new one is).
  $("record-links").hidden = !record.customer_link;
  $("record-customer-link").value = record.customer_link || "";
  $("record-console").href = record.stylist_link || "";
  renderEarlier($("earlier"), record.earlier, token);
  // Staff start the next appointment from this one.
  $("same-again").hidden = Boolean(token);
  $("same-again").onclick = async () => {
    const created = await api(`/api/consultations/${record.id}/same-again`, { method: "POST" });
    location.assign(`/r/${created.id}`);
  };
  $("record").hidden = false;
}

// The owner deletes a still (from the viewer), a message, or the whole consultation (after
// being offered its export); others are refused by the server, which says so.
function offerDeletion(record, strip) {
  const status = () => $("record-message");
  const reload = () => location.reload();
  for (const [li, m] of [...$("record-chat").children].map((li, i) => [li, record.messages[i]])) {
    li.append(deleteBox({ url: `/api/consultations/${record.id}/messages/${m.seq}`, label: "delete.message", status, after: reload }));
  }
  const slot = document.createElement("span");
  slot.dataset.testid = "viewer-delete";
  $("viewer-download").after(slot);
  strip.viewer.onopen = (still) => {
    slot.replaceChildren(deleteBox({ url: `/api/stills/${still.id}`, label: "delete.still", status, after: reload }));
  };
  $("record-delete").replaceChildren(
    deleteBox({
      url: `/api/consultations/${record.id}`,
      exportUrl: `/api/consultations/${record.id}/export`,
      label: "customers.delete_consultation",
      status,
      after: () => location.assign("/"),
    }),
  );
}

// Each recording is one file per participant; the two of one recording share a time line.
function renderRecordings(recordings) {
  $("record-recordings-card").hidden = !recordings.length;
  $("record-recordings").replaceChildren(
    ...recordings.map((r) => {
      const figure = document.createElement("figure");
      figure.dataset.testid = "record-recording";
      const video = document.createElement("video");
      video.controls = true;
      video.preload = "metadata";
      video.src = withToken(`/api/recordings/${r.id}`, token);
      const caption = document.createElement("figcaption");
      setText(caption, `record.recording.${r.role}`, {
        time: when(r.started_at, ""),
        seconds: Math.round(r.duration_s),
      });
      const download = document.createElement("a");
      download.href = withToken(`/api/recordings/${r.id}`, token, "&download=1");
      download.dataset.testid = "record-recording-download";
      setText(download, "record.download");
      caption.append(" ", download);
      figure.append(video, caption);
      return figure;
    }),
  );
}

async function renderHistory(record) {
  if (token || !record.customer_ref) return;
  const { consultations } = await api(`/api/consultations?customer_ref=${encodeURIComponent(record.customer_ref)}`, { token });
  const ordered = consultations.slice().sort((a, b) => a.created_at.localeCompare(b.created_at));
  $("record-history").replaceChildren(
    ...ordered.map((c) => {
      const li = document.createElement("li");
      li.dataset.testid = "record-history-item";
      const link = document.createElement("a");
      link.href = `/r/${c.id}`;
      link.textContent = `${when(c.scheduled_at || c.created_at, "")}${c.summary ? ` · ${c.summary}` : ""}`;
      if (c.id === record.id) li.setAttribute("aria-current", "page");
      li.append(link);
      return li;
    }),
  );
  $("record-history-card").hidden = false;
}

async function main() {
  await startI18n();
  if (token) {
    // The customer goes back to their call, staff (the default) to the dashboard.
    $("record-back").href = `/c/${token}`;
    setText($("record-back"), "record.back_call");
  }
  try {
    const id = consultationId || (await api("/api/link", { token })).consultation_id;
    const record = await api(`/api/consultations/${id}`, { token });
    render(record);
    await renderHistory(record);
  } catch (error) {
    setText($("record-message"), error.status === 401 ? "record.sign_in" : "record.not_found");
  }
}

main();
