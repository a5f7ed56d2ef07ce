// Voice messages, video clips and files in the chat (docs/protocol.md, attachments): recorded
// or picked here, sent over HTTP (the server decides what they are from their bytes), and shown
// inline wherever a message is shown: the call's chat and the record page.
import { setText, t } from "./i18n.js";
import { api } from "./page.js";
import { withToken } from "./stills.js";

// The server's limits (consult/attachments.py); the recorder stops itself at the voice limit.
export const VOICE_LIMIT_MS = 120_000;
const VIDEO_MAX_BYTES = 50 * 1024 * 1024;
const FILE_MAX_BYTES = 25 * 1024 * 1024;
// What each browser's MediaRecorder makes: Chromium WebM/Opus, Firefox Ogg/Opus, Safari MP4/AAC.
const VOICE_TYPES = ["audio/webm;codecs=opus", "audio/ogg;codecs=opus", "audio/mp4"];
export const FILE_ACCEPT = "application/pdf,image/png,image/jpeg,image/gif,image/webp,video/mp4,video/webm,video/quicktime";

export async function sendAttachment(consultationId, token, { kind, blob, name, id }) {
  const query = new URLSearchParams({ kind, id, name: name || "" });
  const url = `/api/consultations/${consultationId}/attachments?${query}`;
  return (await api(url, { method: "POST", token, body: blob, type: "application/octet-stream" })).message;
}

// What a picked file is sent as: a clip or a file. The server checks it either way.
export function kindOf(file) {
  return file.type.startsWith("video/") ? "video" : "file";
}

// Refused here before anything is sent, so a 60 MB clip does not go up only to be refused.
export function tooLarge(kind, file) {
  return file.size > (kind === "video" ? VIDEO_MAX_BYTES : FILE_MAX_BYTES);
}

export function clock(seconds) {
  const s = Math.max(0, Math.round(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

function size(bytes) {
  return bytes < 1024 * 1024 ? `${Math.max(1, Math.round(bytes / 1024))} kB` : `${(bytes / 1048576).toFixed(1)} MB`;
}

// Chromium cannot seek in Firefox's MediaRecorder WebM (no cues, a first packet before 0): the
// seek that starts playing it, a replay or the scrubber fail with a demuxer error and leave the
// element dead. Loaded again, it plays from the start: once per failure (until it plays), and
// it resumes playing if that is what was asked; a failed seek costs the position only.
function keepPlayable(media) {
  let retried = false;
  let wanted = false;
  media.addEventListener("play", () => (wanted = true));
  media.addEventListener("pause", () => (wanted = false));
  media.addEventListener("playing", () => (retried = false));
  media.addEventListener("error", () => {
    if (retried) return;
    retried = true;
    const resume = wanted;
    media.load();
    if (resume) media.play().catch(() => {});
  });
}

// An attachment as the chat and the record show it: played, shown or offered for download.
export function renderAttachment(attachment, token) {
  const url = withToken(attachment.url, token);
  const box = document.createElement("span");
  box.className = `attachment ${attachment.kind}`;
  const about = document.createElement("small");
  about.className = "about";
  if (attachment.kind === "voice" || attachment.kind === "video") {
    const media = document.createElement(attachment.kind === "voice" ? "audio" : "video");
    media.controls = true;
    media.preload = "metadata";
    if (attachment.kind === "video") media.playsInline = true;
    media.dataset.testid = attachment.kind === "voice" ? "chat-voice" : "chat-video";
    media.src = url;
    keepPlayable(media);
    box.append(media);
    // A MediaRecorder's WebM has no duration in its header (the player shows none until it has
    // played it through; seeking to the end to find it breaks Chromium on Firefox's WebM):
    // the length the server measured is shown beside it.
    setText(about, `attach.${attachment.kind}_about`, { duration: clock(attachment.duration || 0), size: size(attachment.bytes) });
  } else if (attachment.media_type.startsWith("image/")) {
    const link = document.createElement("a");
    link.href = url;
    link.target = "_blank";
    link.rel = "noopener";
    const img = document.createElement("img");
    img.src = url;
    img.alt = attachment.name;
    img.dataset.testid = "chat-image";
    link.append(img);
    box.append(link);
    about.textContent = `${attachment.name} · ${size(attachment.bytes)}`;
  } else {
    const link = document.createElement("a");
    link.href = withToken(attachment.url, token, "&download=1");
    link.download = attachment.name;
    link.dataset.testid = "chat-file";
    link.className = "file";
    link.textContent = attachment.name;
    box.append(link);
    about.textContent = `${attachment.name.split(".").pop().toUpperCase()} · ${size(attachment.bytes)}`;
  }
  box.append(about);
  return box;
}

// Records a voice message from the microphone, at most VOICE_LIMIT_MS (it stops itself there).
// Emits "recorded" with {blob, ms, type}; `ms` is the recorder's own start-to-stop time.
// `microphone()`: the call's own microphone track, if there is one: recorded from a clone of it
// rather than opened a second time (a phone may end the call's track when asked again).
export class VoiceRecorder extends EventTarget {
  constructor(button, status, microphone = () => null) {
    super();
    this.button = button;
    this.status = status;
    this.microphone = microphone;
    this.recorder = null;
    this.timer = null;
    button.hidden = !window.MediaRecorder || !navigator.mediaDevices?.getUserMedia;
    button.addEventListener("click", () => (this.recorder ? this.stop() : this.start()));
  }

  async start() {
    let stream;
    const live = this.microphone();
    if (live && live.readyState === "live") {
      const track = live.clone();
      track.enabled = true; // recording is asked for, even with the call's microphone muted
      stream = new MediaStream([track]);
    } else {
      try {
        stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: false });
      } catch (error) {
        window.alert(t("attach.no_microphone", { message: error.message }));
        return;
      }
    }
    const mimeType = VOICE_TYPES.find((type) => MediaRecorder.isTypeSupported(type));
    const recorder = new MediaRecorder(stream, mimeType ? { mimeType } : {});
    const chunks = [];
    let started = 0;
    recorder.addEventListener("dataavailable", (event) => event.data.size && chunks.push(event.data));
    recorder.addEventListener("start", () => {
      started = performance.now();
      this.timer = setInterval(() => this.render(performance.now() - started), 250);
      this.render(0);
    });
    recorder.addEventListener("stop", () => {
      const ms = performance.now() - started;
      clearInterval(this.timer);
      for (const track of stream.getTracks()) track.stop();
      this.recorder = null;
      this.status.hidden = true;
      this.status.dataset.durationMs = String(Math.round(ms));
      setText(this.button, "attach.voice");
      this.button.classList.remove("recording");
      const type = recorder.mimeType || mimeType || "audio/webm";
      this.dispatchEvent(new CustomEvent("recorded", { detail: { blob: new Blob(chunks, { type }), ms, type } }));
    });
    this.recorder = recorder;
    recorder.start(1000);
    this.limit = setTimeout(() => this.stop(), VOICE_LIMIT_MS);
  }

  stop() {
    clearTimeout(this.limit);
    if (this.recorder && this.recorder.state !== "inactive") this.recorder.stop();
  }

  render(ms) {
    this.status.hidden = false;
    setText(this.status, "attach.voice_recording", { time: clock(ms / 1000), limit: clock(VOICE_LIMIT_MS / 1000) });
    setText(this.button, "attach.voice_stop");
    this.button.classList.add("recording");
  }
}

// A file name for a recording, from its type (the server names it from its bytes anyway).
export function voiceName(type) {
  const extension = type.includes("ogg") ? "ogg" : type.includes("mp4") ? "m4a" : "webm";
  return `voice-${new Date().toISOString().slice(0, 19).replace(/[T:]/g, "-")}.${extension}`;
}
