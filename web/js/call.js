// The page behind both links: the customer's lobby and call (/c/<token>) and the stylist's
// console (/s/<token>). Wire protocol: docs/protocol.md.
import { language, setText, startI18n, t } from "./i18n.js";
import { CameraError, listDevices, openCamera, stopStream, webrtcSupported } from "./camera.js";
import { CallSession } from "./call-session.js";
import { watchQuality } from "./quality.js";
import { renderEarlier, showNotice, StillStrip, takePhoto, uploadPhoto, withToken } from "./stills.js";
import { Chat } from "./chat.js";
import { Notes, showSummary } from "./notes.js";
import { PalettePanel, renderChosen, renderSwatchCard } from "./palette.js";
import { StillTools } from "./still-tools.js";

const [, prefix, token] = location.pathname.split("/");
const role = prefix === "s" ? "stylist" : "customer";
const $ = (id) => document.getElementById(id);

let stream = null;
let session = null;
let facingMode = "user";
let wakeLock = null;
let stopQuality = null;
let strip = null;
let chat = null;
let notes = null;
let palette = null;

function show(section) {
  for (const id of ["lobby", "call", "ended"]) $(id).hidden = id !== section;
}

function lobbyMessage(key, vars) {
  setText($("lobby-message"), key, vars);
}

async function startCamera(options = {}) {
  $("join").disabled = true;
  $("retry").hidden = true;
  lobbyMessage("lobby.starting");
  try {
    const next = await openCamera(options);
    stopStream(stream);
    stream = next;
  } catch (error) {
    lobbyMessage(error instanceof CameraError ? error.key : "camera.failed");
    $("retry").hidden = false;
    return false;
  }
  applyToggles();
  $("preview").srcObject = stream;
  $("local").srcObject = stream;
  await fillPickers();
  lobbyMessage("lobby.ready");
  $("join").disabled = false;
  if (session) await session.replaceStream(stream);
  return true;
}

async function fillPickers() {
  const { cameras, microphones } = await listDevices();
  const current = (kind) => stream.getTracks().find((tr) => tr.kind === kind)?.getSettings().deviceId;
  for (const [select, devices, kind, name] of [
    [$("camera-select"), cameras, "video", "lobby.camera"],
    [$("mic-select"), microphones, "audio", "lobby.microphone"],
  ]) {
    select.replaceChildren(
      ...devices.map((d, i) => new Option(d.label || `${t(name)} ${i + 1}`, d.deviceId, false, d.deviceId === current(kind))),
    );
    select.parentElement.hidden = devices.length < 2;
  }
  // Phones: a front and a back camera.
  $("flip").hidden = cameras.length < 2;
}

function applyToggles() {
  for (const track of stream.getAudioTracks()) track.enabled = $("mute").getAttribute("aria-pressed") !== "true";
  for (const track of stream.getVideoTracks()) track.enabled = $("camera-toggle").getAttribute("aria-pressed") !== "true";
}

function toggle(button, onKey, offKey) {
  const pressed = button.getAttribute("aria-pressed") !== "true";
  button.setAttribute("aria-pressed", String(pressed));
  setText(button, pressed ? offKey : onKey);
  applyToggles();
}

async function keepAwake() {
  try {
    if ("wakeLock" in navigator && document.visibilityState === "visible" && !wakeLock) {
      wakeLock = await navigator.wakeLock.request("screen");
      wakeLock.addEventListener("release", () => (wakeLock = null));
    }
  } catch {
    // Not allowed here (battery saver, no user gesture): the call works without it.
  }
}

function statusFor(state, partnerLeft) {
  if (state === "connecting") return "call.connecting";
  if (state === "reconnecting") return "call.reconnecting";
  if (state === "waiting") return partnerLeft ? `call.partner_left.${role}` : `call.waiting.${role}`;
  return null;
}

function renderState({ state, partnerLeft }) {
  document.body.dataset.callState = state;
  if (state === "left") {
    setText($("ended-message"), "call.left");
    $("rejoin").hidden = false;
    show("ended");
    return;
  }
  if (state === "ended") {
    $("rejoin").hidden = $("ended-message").dataset.i18n !== "error.replaced";
    show("ended");
    return;
  }
  show("call");
  const key = statusFor(state, partnerLeft);
  $("call-status").hidden = !key;
  if (key) setText($("call-status"), key);
}

function join() {
  if (session) session.dispose();
  session = new CallSession(token, stream);
  session.addEventListener("state", (event) => renderState(event.detail));
  session.addEventListener("remotestream", (event) => {
    if ($("remote").srcObject !== event.detail.stream) $("remote").srcObject = event.detail.stream;
  });
  session.addEventListener("error", (event) => {
    const { code, message } = event.detail;
    const key = t(`error.${code}`) === `error.${code}` ? "error.generic" : `error.${code}`;
    // Kept for the "ended" screen if the server closes the connection after it.
    setText($("ended-message"), key, { message });
    if (!["ended", "left"].includes(session.state)) {
      $("call-status").hidden = false;
      setText($("call-status"), key, { message });
    }
  });
  session.addEventListener("message", (event) => onMessage(event.detail));
  session.addEventListener("state", renderAway);
  if (role === "stylist") palette = new PalettePanel($("console-features"), session, token);
  session.addEventListener("welcome", (event) => {
    showSwatch(event.detail.swatch);
    showChosen(event.detail.chosen || []);
    salon = event.detail.salon;
    renderAway();
    const consultation = event.detail.consultation;
    renderEarlier($("earlier"), consultation.earlier, token);
    if (role === "stylist") notes.load(consultation);
    else showSummary($("summary-card"), consultation.summary);
  });
  chat = new Chat(session, role, token, {
    panel: role === "customer" ? $("chat-drawer") : $("chat"),
    list: $("chat-list"),
    form: $("chat-form"),
    input: $("chat-input"),
    photo: $("chat-photo"),
    unread: $("chat-unread"),
  });
  session.addEventListener("state", () => {
    if (role === "stylist" && session.consultation) {
      $("customer-name").textContent = session.consultation.customer_name;
      const at = session.consultation.scheduled_at;
      $("scheduled-at").textContent = at ? new Date(at).toLocaleString() : "–";
    }
  });
  session.addEventListener("state", (event) => {
    if (event.detail.state === "live" || event.detail.state === "waiting") loadStills();
  });
  session.join();
  keepAwake();
  if (role === "stylist" && !stopQuality) stopQuality = watchQuality(() => session?.pc, renderQuality);
}

// The salon is closed and nobody is there to answer: say so, and when it opens.
let salon = null;
function renderAway() {
  const away = role === "customer" && salon && !salon.open;
  const partnerAway = !session || session.state !== "live";
  for (const [id, show] of [["away-lobby", away && !session], ["away-call", away && partnerAway && session]]) {
    const box = $(id);
    box.hidden = !show;
    if (!show) continue;
    const when = salon.next_open
      ? new Date(salon.next_open).toLocaleString(language(), { weekday: "long", hour: "2-digit", minute: "2-digit" })
      : null;
    const text = document.createElement("p");
    text.textContent = salon.away_message || t("away.default");
    const next = document.createElement("p");
    next.className = "muted";
    if (when) setText(next, "away.next", { when });
    else setText(next, "away.no_hours");
    box.replaceChildren(text, next);
  }
}

async function loadSalon() {
  if (role !== "customer") return;
  const response = await fetch("/api/salon/status", { headers: { Authorization: `Bearer ${token}` } });
  if (response.ok) salon = await response.json();
  renderAway();
}

function showSwatch(swatch) {
  if (role === "stylist") palette?.setCurrent(swatch || null);
  else renderSwatchCard($("swatch-card"), swatch || null);
}

function showChosen(chosen) {
  if (role === "stylist") palette?.setChosen(chosen);
  else renderChosen($("chosen-list"), chosen);
}

// The customer sees a try-on (or a corrected copy) beside the photo it was made from.
function showCompare(still) {
  $("compare-original").src = withToken(`/api/stills/${still.parent_id}`, token);
  $("compare-derived").src = withToken(still.url, token);
  setText($("compare-title"), `compare.${still.source}`, { name: still.derivation?.swatch?.name || "" });
  $("compare").hidden = false;
}

async function onMessage(message) {
  if (message.type === "swatch") return showSwatch(message.swatch);
  if (message.type === "chosen") return showChosen(message.swatches);
  if (message.type === "away") {
    salon = { ...(salon || {}), open: false, away_message: message.message, next_open: message.next_open };
    renderAway();
    return;
  }
  if (message.type === "capture-request" && role === "customer") {
    // The call keeps running while the photo is taken and sent.
    try {
      await uploadPhoto(message.upload_url, token, await takePhoto(stream));
    } catch (error) {
      flashStatus(error.code ? `error.${error.code}` : "stills.upload_failed");
    }
  } else if (message.type === "notes" && role === "customer") {
    showSummary($("summary-card"), message.summary);
  } else if (message.type === "still") {
    if (role === "customer" && message.still.parent_id) showCompare(message.still);
    else if (role === "customer") showNotice(message.still, token);
    else strip.add(message.still);
  }
}

function flashStatus(key) {
  const status = $("call-status");
  setText(status, t(key) === key ? "stills.upload_failed" : key);
  status.hidden = false;
  setTimeout(() => renderState({ state: session.state, partnerLeft: session.partnerLeft }), 4000);
}

// The stills taken before this page (re)joined, oldest first so the newest ends up first.
async function loadStills() {
  if (role !== "stylist" || !session?.consultation) return;
  const response = await fetch(`/api/consultations/${session.consultation.id}`, {
    headers: { Authorization: `Bearer ${token}` },
  });
  if (!response.ok) return;
  const record = await response.json();
  for (const still of record.stills.slice().reverse()) strip.add(still);
  palette?.seedRecent(record.swatches_shown.map((entry) => entry.swatch));
}

function capture() {
  if (!session || !["live", "waiting"].includes(session.state)) return;
  $("capture").disabled = true;
  session.capture();
  setTimeout(() => ($("capture").disabled = false), 1000);
}

function renderQuality(sample) {
  if (!sample) {
    setText($("quality-video"), "console.quality.none");
    $("quality-grade").textContent = "";
    return;
  }
  $("quality-rtt").textContent = sample.rtt == null ? "–" : `${Math.round(sample.rtt)} ms`;
  $("quality-loss").textContent = `${(sample.loss * 100).toFixed(1)} %`;
  if (sample.width) {
    $("quality-video").removeAttribute("data-i18n");
    $("quality-video").textContent = `${sample.width}×${sample.height} · ${Math.round(sample.fps)} fps`;
  } else {
    setText($("quality-video"), "console.quality.none");
  }
  setText($("quality-grade"), `console.quality.${sample.grade}`);
  $("quality-grade").dataset.grade = sample.grade;
}

async function main() {
  await startI18n();
  document.body.dataset.role = role;
  setText($("lobby-title"), `lobby.title.${role}`);
  $("lobby-intro").hidden = role !== "customer";
  $("record-link").href = `${location.pathname.replace(/\/$/, "")}/record`;
  $("guide").hidden = role !== "customer";
  $("console").hidden = role !== "stylist";
  $("capture").hidden = role !== "stylist";
  $("send-photo").hidden = role !== "customer";
  if (role === "stylist") {
    strip = new StillStrip(token);
    // Try-ons use the swatch on the customer's screen, else the latest chosen one.
    new StillTools(strip.viewer, token, { swatch: () => palette?.current || palette?.chosen.at(-1)?.swatch || null });
    notes = new Notes(token, {
      areas: { summary: $("summary"), notes: $("private-notes") },
      status: $("notes-status"),
    });
  }
  // The customer's chat is a drawer over the call; the stylist's sits in the console.
  if (role === "customer") $("chat-drawer").append($("earlier"), $("chat"));
  $("chat-toggle").hidden = role !== "customer";
  $("compare-close").addEventListener("click", () => ($("compare").hidden = true));
  $("chat-toggle").addEventListener("click", () => {
    const drawer = $("chat-drawer");
    drawer.hidden = !drawer.hidden;
    $("chat-toggle").setAttribute("aria-expanded", String(!drawer.hidden));
    if (!drawer.hidden) chat?.shown();
  });
  if (!webrtcSupported()) {
    lobbyMessage("browser.unsupported");
    return;
  }
  $("join").addEventListener("click", join);
  $("rejoin").addEventListener("click", join);
  $("retry").addEventListener("click", () => startCamera());
  $("leave").addEventListener("click", () => session?.leave());
  $("capture").addEventListener("click", capture);
  $("send-photo").addEventListener("click", () => session?.capture());
  document.addEventListener("keydown", (event) => {
    const typing = event.target.closest?.("input, textarea, select, [contenteditable]");
    if (role === "stylist" && event.key === "c" && !typing && !event.ctrlKey && !event.metaKey) capture();
  });
  $("mute").addEventListener("click", () => toggle($("mute"), "call.mute", "call.unmute"));
  $("camera-toggle").addEventListener("click", () => toggle($("camera-toggle"), "call.camera_off", "call.camera_on"));
  $("flip").addEventListener("click", () => {
    facingMode = facingMode === "user" ? "environment" : "user";
    startCamera({ facingMode });
  });
  $("camera-select").addEventListener("change", (e) => startCamera({ videoDeviceId: e.target.value, audioDeviceId: $("mic-select").value }));
  $("mic-select").addEventListener("change", (e) => startCamera({ videoDeviceId: $("camera-select").value, audioDeviceId: e.target.value }));
  document.addEventListener("visibilitychange", () => {
    if (session && ["waiting", "live"].includes(session.state)) keepAwake();
  });
  await loadSalon();
  await startCamera();
}

main();
