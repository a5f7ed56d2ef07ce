// The page behind both links: the customer's conversation, lobby and call (/c/<token>) and the
// stylist's console (/s/<token>). Wire protocol: docs/protocol.md. The chat goes over the
// conversation's own websocket (ConversationSession), with or without a call.
import { language, setText, startI18n, t } from "./i18n.js";
import { $, api, el, errorKey } from "./page.js";
import { webrtcSupported } from "./camera.js";
import { LocalMedia } from "./local-media.js";
import { CameraUi } from "./camera-ui.js";
import { CallSession } from "./call-session.js";
import { ConversationSession } from "./conversation-session.js";
import { QuickReplies } from "./quick-replies.js";
import { watchQuality, watchUpload } from "./quality.js";
import { renderEarlier, showNotice, StillStrip, withToken } from "./stills.js";
import { CaptureFlow } from "./capture.js";
import { Console } from "./console.js";
import { Chat } from "./chat.js";
import { Notes, showSummary } from "./notes.js";
import { PalettePanel, renderChosen, renderSwatchCard } from "./palette.js";
import { StillTools } from "./still-tools.js";
import { RecordingUi } from "./recording.js";
import { showWhose } from "./staff.js";
import { ConsentGate, YourData } from "./privacy.js";

const [, prefix, token] = location.pathname.split("/");
const role = prefix === "s" ? "stylist" : "customer";

// The customer starts on the rear camera (it focuses close and has the torch), the stylist on
// the front one.
const media = new LocalMedia({ facingMode: role === "customer" ? "environment" : "user" });
let session = null;
const conversation = new ConversationSession(token);
let wakeLock = null;
let stopQuality = null;
let strip = null;
let chat = null;
let notes = null;
let palette = null;
let console_ = null;
let captureFlow = null;
const cameraUi = new CameraUi(media, () => session);
const recording = new RecordingUi(role, () => session);
let consent = null;

function show(section) {
  for (const id of ["conversation", "lobby", "call", "ended"]) $(id).hidden = id !== section;
  cameraUi.placeForCall(section === "call");
  // The customer's chat: a drawer over the call, the page itself in the conversation.
  if (role === "customer") {
    const home = section === "call" ? $("chat-drawer") : $("conversation-body");
    if ($("chat").parentElement !== home) home.append($("earlier"), $("chat"));
    $("back-to-conversation").hidden = section !== "ended";
  }
  renderAway();
  chat?.shown(false);
}

// The customer's one tap from the conversation to the call: the lobby, and only now the camera.
function openLobby() {
  show("lobby");
  if (!webrtcSupported()) {
    lobbyMessage("browser.unsupported");
    return;
  }
  startCamera();
}

function lobbyMessage(key, vars) {
  setText($("lobby-message"), key, vars);
}

async function startCamera(options = {}) {
  $("join").disabled = true;
  $("retry").hidden = true;
  lobbyMessage("lobby.starting");
  try {
    await media.start(options);
  } catch (error) {
    lobbyMessage(error.key || "camera.failed");
    $("retry").hidden = false;
    // A refused camera is no dead end: join to talk and write, and open the record.
    $("join-without-camera").hidden = false;
    return false;
  }
  applyToggles();
  lobbyMessage("lobby.ready");
  $("join").disabled = false;
  return true;
}

// Without the camera: the microphone if it is allowed, else nothing (see, hear and write).
async function joinWithoutCamera() {
  try {
    await media.start({ video: false });
  } catch {
    media.none();
  }
  join();
}

function applyToggles() {
  media.setEnabled("audio", $("mute").getAttribute("aria-pressed") !== "true");
  media.setEnabled("video", $("camera-toggle").getAttribute("aria-pressed") !== "true");
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

function statusFor(state, partnerLeft, busy) {
  if (busy && (state === "connecting" || state === "reconnecting")) return "error.server-busy";
  if (state === "connecting") return "call.connecting";
  if (state === "reconnecting") return "call.reconnecting";
  if (state === "waiting") return partnerLeft ? `call.partner_left.${role}` : `call.waiting.${role}`;
  return null;
}

function renderState({ state, partnerLeft, busy }) {
  document.body.dataset.callState = state;
  // A recording stops when either side leaves, and a page that rejoins starts without one.
  if (state !== "live") recording.reset();
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
  if ($("call").hidden) show("call");
  const key = statusFor(state, partnerLeft, busy);
  $("call-status").hidden = !key;
  if (key) setText($("call-status"), key);
}

// The first attempt got no media through: say it plainly, and what to try. The page goes on
// trying; the message goes once the media flows.
function renderBlocked(blocked) {
  const box = $("network-blocked");
  box.hidden = !blocked;
  if (blocked) setText(box, `network.blocked.${role}`);
}

function join() {
  // The customer agrees to what is kept before the call (the server may require it).
  if (role === "customer" && !consent?.ready()) return;
  if (session) session.dispose();
  session = new CallSession(token, media.stream);
  session.addEventListener("state", (event) => renderState(event.detail));
  session.addEventListener("remotestream", (event) => {
    if ($("remote").srcObject !== event.detail.stream) $("remote").srcObject = event.detail.stream;
  });
  session.addEventListener("error", (event) => {
    const { code, message } = event.detail;
    const key = errorKey(code);
    // Kept for the "ended" screen if the server closes the connection after it.
    setText($("ended-message"), key, { message });
    if (!["ended", "left"].includes(session.state)) {
      $("call-status").hidden = false;
      setText($("call-status"), key, { message });
    }
  });
  session.addEventListener("blocked", () => renderBlocked(true));
  session.addEventListener("connected", () => renderBlocked(false));
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
    if (role === "stylist") showWhose($("console-whose"), consultation.assigned_to, token);
    else showSummary($("summary-card"), consultation.summary);
  });
  session.addEventListener("state", () => {
    if (role === "stylist" && session.consultation) {
      $("customer-name").textContent = session.consultation.customer_name;
      const at = session.consultation.scheduled_at;
      $("scheduled-at").textContent = at ? new Date(at).toLocaleString(language()) : "–";
    }
  });
  session.addEventListener("state", (event) => {
    if (event.detail.state === "live" || event.detail.state === "waiting") loadStills();
  });
  session.join();
  keepAwake();
  if (role === "stylist" && !stopQuality) stopQuality = watchQuality(() => session?.pc, (s) => console_.ownLink(s));
  if (role === "customer" && !stopQuality) {
    stopQuality = watchUpload(() => session?.pc, (report) => {
      session?.sendStats({ video: report.video, rtt_ms: report.rtt_ms });
      renderUpload(report.grade);
    });
  }
}

// The customer's own upload, in one word: the leg that carries the hand.
function renderUpload(grade) {
  const badge = $("upload-quality");
  badge.hidden = false;
  badge.dataset.grade = grade;
  setText(badge, `upload.${grade}`);
}

// The salon is closed and nobody is there to answer: say so, and when it opens.
let salon = null;
function renderAway() {
  const away = role === "customer" && salon && !salon.open && $("ended").hidden;
  const partnerAway = !session || session.state !== "live";
  for (const [id, show] of [["away-lobby", away && !session], ["away-call", away && partnerAway && session]]) {
    const box = $(id);
    box.hidden = !show;
    if (!show) continue;
    const next = salon.next_open
      ? new Date(salon.next_open).toLocaleString(language(), { weekday: "long", hour: "2-digit", minute: "2-digit" })
      : null;
    const text = el("p");
    text.textContent = salon.away_message || t("away.default");
    const later = el("p", { className: "muted" });
    if (next) setText(later, "away.next", { when: next });
    else setText(later, "away.no_hours");
    box.replaceChildren(text, later);
  }
}

async function loadSalon() {
  if (role !== "customer") return;
  try {
    salon = await api("/api/salon/status", { token });
  } catch {
    salon = null;
  }
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
  switch (message.type) {
    case "swatch":
      return showSwatch(message.swatch);
    case "chosen":
      return showChosen(message.swatches);
    case "away":
      salon = { ...(salon || {}), open: false, away_message: message.message, next_open: message.next_open };
      return renderAway();
    case "capture-request":
      // The call keeps running while the photo is taken and sent.
      if (role === "customer") await captureFlow.request(message);
      return;
    case "ask":
      if (role === "customer") cameraUi.ask(message.what);
      return;
    case "upload-stats":
      if (role === "stylist") console_.uploadStats(message);
      return;
    case "media":
      if (role === "stylist" && message.role === "customer") console_.customerMedia(message.state);
      if (message.role === role) renderBlocked(message.state === "unreachable");
      return;
    case "notes":
      if (role === "customer") showSummary($("summary-card"), message.summary);
      return;
    case "recording":
      return recording.update(message);
    case "still":
      if (role === "customer" && message.still.parent_id) showCompare(message.still);
      else if (role === "customer") {
        showNotice(message.still, token);
        captureFlow.still(message.still);
      } else {
        strip.add(message.still);
        console_.still(message.still);
      }
  }
}

// The stills taken before this page (re)joined, oldest first so the newest ends up first.
async function loadStills() {
  if (role !== "stylist" || !session?.consultation) return;
  let record;
  try {
    record = await api(`/api/consultations/${session.consultation.id}`, { token });
  } catch {
    return;
  }
  for (const still of record.stills.slice().reverse()) strip.add(still);
  palette?.seedRecent(record.swatches_shown.map((entry) => entry.swatch));
}

async function main() {
  await startI18n();
  document.body.dataset.role = role;
  setText($("lobby-title"), `lobby.title.${role}`);
  $("lobby-intro").hidden = role !== "customer";
  const recordUrl = `${location.pathname.replace(/\/$/, "")}/record`;
  $("record-link").href = recordUrl;
  $("lobby-record-link").href = recordUrl;
  $("conversation-record-link").href = recordUrl;
  $("guide").hidden = role !== "customer";
  $("console").hidden = role !== "stylist";
  $("capture").hidden = role !== "stylist";
  $("send-photo").hidden = role !== "customer";
  if (role === "stylist") {
    strip = new StillStrip(token);
    console_ = new Console(() => session);
    // Try-ons use the swatch on the customer's screen, else the latest chosen one.
    new StillTools(strip.viewer, token, { swatch: () => palette?.current || palette?.chosen.at(-1)?.swatch || null });
    notes = new Notes(token, {
      areas: { summary: $("summary"), notes: $("private-notes") },
      status: $("notes-status"),
    });
  } else {
    captureFlow = new CaptureFlow(token, { camera: () => media.video, torch: () => media.torchOn });
  }
  // The chat, with or without a call: the customer's in the conversation (a drawer over the
  // call), the stylist's in the console.
  chat = new Chat(conversation, role, token, {
    list: $("chat-list"),
    form: $("chat-form"),
    input: $("chat-input"),
    photo: $("chat-photo"),
    file: $("chat-file"),
    voice: $("chat-voice"),
    voiceStatus: $("voice-status"),
    microphone: () => media.audio,
    unread: $("chat-unread"),
  });
  conversation.addEventListener("welcome", (event) => {
    salon = event.detail.salon;
    renderAway();
    if (role === "customer") {
      if (!consent) {
        const id = event.detail.consultation.id;
        consent = new ConsentGate($("consent-box"), id, token);
        consent.load();
        new YourData($("your-data"), id, token).render();
      }
      renderEarlier($("earlier"), event.detail.consultation.earlier, token);
      showSummary($("summary-card"), event.detail.consultation.summary);
    }
  });
  conversation.addEventListener("message", (event) => {
    if (event.detail.type === "away") onMessage(event.detail);
  });
  conversation.open();
  if (role === "stylist") new QuickReplies($("quick-replies"), $("chat-input"), token).load();
  $("chat-toggle").hidden = role !== "customer";
  $("compare-close").addEventListener("click", () => ($("compare").hidden = true));
  $("chat-toggle").addEventListener("click", () => {
    const drawer = $("chat-drawer");
    drawer.hidden = !drawer.hidden;
    $("chat-toggle").setAttribute("aria-expanded", String(!drawer.hidden));
    if (!drawer.hidden) chat?.shown();
  });
  $("join-call").addEventListener("click", openLobby);
  $("back-to-conversation").addEventListener("click", () => show("conversation"));
  $("join").addEventListener("click", join);
  $("join-without-camera").addEventListener("click", joinWithoutCamera);
  $("rejoin").addEventListener("click", join);
  $("retry").addEventListener("click", () => startCamera());
  $("leave").addEventListener("click", () => session?.leave());
  $("capture").addEventListener("click", () => console_?.capture());
  $("send-photo").addEventListener("click", () => session?.capture());
  document.addEventListener("keydown", (event) => {
    const typing = event.target.closest?.("input, textarea, select, [contenteditable]");
    if (role === "stylist" && event.key === "c" && !typing && !event.ctrlKey && !event.metaKey) console_.capture();
  });
  $("mute").addEventListener("click", () => toggle($("mute"), "call.mute", "call.unmute"));
  $("camera-toggle").addEventListener("click", () => toggle($("camera-toggle"), "call.camera_off", "call.camera_on"));
  document.addEventListener("visibilitychange", () => {
    if (session && ["waiting", "live"].includes(session.state)) keepAwake();
  });
  await loadSalon();
  if (role === "customer") show("conversation");
  else openLobby();
}

main();
