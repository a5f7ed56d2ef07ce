// The customer's side of a capture (docs/stills.md): the retake cue, a hand-placement frame and
// countdown over the self view, the camera's largest photo, the device's own camera where the
// browser cannot take one, and the quality gate's verdict as the fix to make.
import { setText } from "./i18n.js";
import { $, el } from "./page.js";
import { uploadPhoto, withToken } from "./stills.js";

const VERDICT_MS = 8000;
// Sources whose verdict speaks for the capture: a photo over the video's best frame.
const PHOTO_SOURCES = new Set(["camera", "native"]);

// The camera's own photo at the largest size it offers (with its fill light when the torch is
// on). Null where the browser has no ImageCapture or the camera refuses: the caller then offers
// the device's own camera (never a video frame passed off as a photo).
export async function takePhoto(track, { torch = false } = {}) {
  if (!track || !("ImageCapture" in window)) return null;
  try {
    const capture = new ImageCapture(track);
    const settings = {};
    const caps = await capture.getPhotoCapabilities().catch(() => null);
    if (caps?.imageWidth?.max && caps?.imageHeight?.max) {
      settings.imageWidth = caps.imageWidth.max;
      settings.imageHeight = caps.imageHeight.max;
    }
    if (torch && (caps?.fillLightMode || []).includes("flash")) settings.fillLightMode = "flash";
    return await capture.takePhoto(settings);
  } catch {
    return null;
  }
}

function videoSize(track) {
  const { width, height } = track?.getSettings?.() || {};
  return width && height ? `${width}x${height}` : null;
}

export class CaptureFlow {
  // camera(): the current video track; torch(): whether the light is on.
  constructor(token, { camera, torch }) {
    this.token = token;
    this.camera = camera;
    this.torch = torch;
    this.current = null; // {id, photo: whether a photo's verdict was shown}
    this.nativeTimer = null;
    this.verdictTimer = null;
    $("native-photo").addEventListener("change", (event) => this.sendNative(event.target));
    $("native-dismiss").addEventListener("click", () => this.hideNative());
  }

  // {capture_id, upload_url, countdown_ms, photo_in_ms, cue, window_s}
  async request(message) {
    const received = performance.now();
    this.current = { id: message.capture_id, photo: false };
    this.hideNative();
    $("capture-verdict").hidden = true;
    const track = this.camera();
    const size = videoSize(track);
    await this.countdown(message.countdown_ms, message.cue || []);
    // The server's video still comes first: taking a photo stalls the camera's video.
    const wait = (message.photo_in_ms || 0) - (performance.now() - received);
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    $("capture-frame").hidden = true;
    if (this.current?.id !== message.capture_id) return; // a newer capture took over
    const url = size ? `${message.upload_url}&video=${size}` : message.upload_url;
    const photo = await takePhoto(track, { torch: this.torch() });
    if (photo) {
      try {
        await uploadPhoto(url, this.token, photo);
        return;
      } catch (error) {
        // Refused or lost on the way: the device's camera is the way left to a photo.
        this.status(error.key || "stills.upload_failed", { message: error.message });
      }
    }
    this.offerNative(message, size);
  }

  // The frame shows where the hand goes; the numbers count down to the photo.
  async countdown(ms, cue) {
    const frame = $("capture-frame");
    const counter = $("capture-countdown");
    const cueBox = $("capture-cue");
    cueBox.replaceChildren(...cue.map((hint) => el("li", { i18n: `verdict.${hint}` })));
    cueBox.hidden = cue.length === 0;
    if (ms <= 0) {
      cueBox.hidden = true;
      return;
    }
    frame.hidden = false;
    counter.hidden = false;
    const steps = Math.ceil(ms / 1000);
    for (let left = steps; left > 0; left--) {
      counter.textContent = String(left);
      await new Promise((resolve) => setTimeout(resolve, ms / steps));
    }
    counter.hidden = true;
    cueBox.hidden = true;
  }

  offerNative(message, size) {
    const box = $("native-prompt");
    box.hidden = false;
    this.native = { url: `${message.upload_url}&source=native${size ? `&video=${size}` : ""}` };
    clearTimeout(this.nativeTimer);
    // After the window the server no longer takes it: the video's best frame stands.
    this.nativeTimer = setTimeout(() => this.hideNative(), (message.window_s || 60) * 1000);
  }

  hideNative() {
    clearTimeout(this.nativeTimer);
    $("native-prompt").hidden = true;
    this.native = null;
  }

  async sendNative(input) {
    const file = input.files[0];
    input.value = "";
    if (!file || !this.native) return;
    setText($("native-status"), "capture.native.sending");
    try {
      // Byte for byte: the photo as the device's camera made it.
      await uploadPhoto(this.native.url, this.token, file);
      this.hideNative();
      setText($("native-status"), "");
    } catch (error) {
      setText($("native-status"), error.key || "stills.upload_failed", { message: error.message });
    }
  }

  // A still of the current capture: its verdict, in the customer's words. A photo's verdict
  // speaks for the capture; the video's only until a photo comes.
  still(still) {
    if (!this.current || still.capture_id !== this.current.id) return;
    const photo = PHOTO_SOURCES.has(still.source);
    if (!photo && this.current.photo) return;
    if (photo) this.current.photo = true;
    const box = $("capture-verdict");
    const hints = still.hints || [];
    box.dataset.verdict = hints.length ? "retake" : "good";
    box.replaceChildren(
      el("img", { src: withToken(still.thumb_url, this.token), alt: "" }),
      el("div", {},
        el("strong", { i18n: hints.length ? "verdict.title.retake" : "verdict.title.good" }),
        ...hints.map((hint) => el("p", { i18n: `verdict.${hint}` })),
      ),
    );
    box.hidden = false;
    clearTimeout(this.verdictTimer);
    this.verdictTimer = setTimeout(() => (box.hidden = true), VERDICT_MS);
  }

  status(key, vars) {
    setText($("native-status"), key, vars);
  }
}
