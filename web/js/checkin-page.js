// The customer's aftercare check-in (/c/<token>/checkin/<id>, docs/pages.md): a photo of each
// view (top, side, the cuticles close up) with the capture's placement frame and the camera's
// largest photo (or the phone's own camera), the quality gate's verdict as the fix to make,
// then the short form. Answered again, each photo and the form replace the first.
import { setText, startI18n } from "./i18n.js";
import { $, api, el } from "./page.js";
import { openCamera, stopStream } from "./camera.js";
import { takePhoto } from "./capture.js";
import { withToken } from "./stills.js";

const parts = location.pathname.split("/");
const token = parts[2];
const checkinId = parts[4];

let checkin = null;
let stream = null;
let current = null; // the view being photographed

function photoUrl(view) {
  return `/api/checkins/${checkinId}/photos?view=${view}`;
}

function renderViews() {
  $("checkin-views").replaceChildren(
    ...checkin.views.map((view) => {
      const done = checkin.photos[view];
      const take = el("button", { type: "button", testid: `take-${view}`, i18n: done ? "checkin.retake" : "checkin.take" });
      take.addEventListener("click", () => startCamera(view));
      const file = el("input", { type: "file", accept: "image/jpeg,image/png", hidden: true });
      file.dataset.testid = `file-${view}`;
      file.setAttribute("capture", "environment");
      file.addEventListener("change", () => {
        const chosen = file.files[0];
        file.value = "";
        if (chosen) send(view, chosen);
      });
      const device = el("button", { type: "button", className: "link", testid: `device-${view}`, i18n: "checkin.device" });
      device.addEventListener("click", () => file.click());
      const status = el("p", { className: "muted", testid: `status-${view}` });
      if (done) setText(status, "checkin.photo_done");
      const row = el("li", { testid: `view-${view}` },
        el("strong", { i18n: `checkin.view.${view}` }),
        el("p", { className: "muted", i18n: `checkin.view.${view}.how` }),
        take, " ", device, file, status,
      );
      row.dataset.done = done ? "true" : "false";
      return row;
    }),
  );
}

// The rear camera with the capture's frame over it: the hand goes inside.
async function startCamera(view) {
  current = view;
  setText($("checkin-message"), "checkin.place");
  $("checkin-camera").hidden = false;
  $("checkin-shutter").hidden = false;
  setText($("checkin-camera-view"), `checkin.view.${view}`);
  try {
    // The shutter waits for the camera: a photo needs its track.
    $("checkin-shutter").disabled = !stream;
    stream ||= await openCamera({ facingMode: "environment", audio: false });
    $("checkin-video").srcObject = stream;
    $("checkin-shutter").disabled = false;
  } catch (error) {
    // No camera here: the phone's own camera app takes it.
    setText($("checkin-message"), error.key || "camera.failed");
    $("checkin-shutter").hidden = true;
  }
}

async function shutter() {
  const view = current;
  $("checkin-shutter").disabled = true;
  const track = stream?.getVideoTracks()[0];
  const photo = await takePhoto(track);
  if (!photo) {
    // A browser that cannot take a photo: the device's camera, never a video frame.
    setText($("checkin-message"), "checkin.use_device");
    $(`checkin-views`).querySelector(`[data-testid=file-${view}]`).click();
    return;
  }
  await send(view, photo);
  $("checkin-shutter").disabled = false;
}

async function send(view, blob) {
  const status = $("checkin-views").querySelector(`[data-testid=status-${view}]`);
  setText(status, "checkin.sending");
  try {
    checkin = await api(photoUrl(view), { method: "POST", token, body: blob, type: blob.type || "image/jpeg" });
    setText($("checkin-message"), "checkin.photo_good");
    $("checkin-verdict").hidden = true;
    const next = checkin.views.find((v) => !checkin.photos[v]);
    renderViews();
    showThumbs();
    if (next) startCamera(next);
    else stopCamera();
  } catch (error) {
    // Refused by the quality gate: what to fix, then the same view again.
    setText(status, "");
    if (error.code === "photo-refused") showVerdict(error);
    else setText($("checkin-message"), error.key, { message: error.message });
  }
}

function showVerdict(error) {
  const box = $("checkin-verdict");
  const hints = (error.details.hints || "").split(",").filter(Boolean);
  box.replaceChildren(
    el("strong", { i18n: "verdict.title.retake" }),
    ...hints.map((hint) => el("p", { i18n: `verdict.${hint}` })),
  );
  box.hidden = false;
  setText($("checkin-message"), "error.photo-refused");
}

function stopCamera() {
  stopStream(stream);
  stream = null;
  $("checkin-camera").hidden = true;
  $("checkin-shutter").hidden = true;
}

function showThumbs() {
  for (const [view, still] of Object.entries(checkin.photos)) {
    const row = $("checkin-views").querySelector(`[data-testid=view-${view}]`);
    const img = el("img", { src: withToken(`/api/stills/${still}/thumb`, token), alt: "" });
    img.dataset.testid = `thumb-${view}`;
    row?.prepend(img);
  }
}

function fillForm() {
  const form = $("checkin-form");
  const a = checkin.answers;
  if (!a) return;
  form.querySelector(`[name=lifting][value=${a.lifting ? "yes" : "no"}]`).checked = true;
  form.querySelector(`[name=chipping][value=${a.chipping ? "yes" : "no"}]`).checked = true;
  form.comfort.value = String(a.comfort);
  form.text.value = a.text;
}

async function submit(event) {
  event.preventDefault();
  const form = new FormData(event.target);
  const missing = checkin.views.filter((v) => !checkin.photos[v]);
  if (missing.length) {
    setText($("checkin-form-message"), "checkin.photos_first");
    return;
  }
  try {
    checkin = await api(`/api/checkins/${checkinId}/answers`, {
      method: "PUT",
      token,
      json: {
        lifting: form.get("lifting") === "yes",
        chipping: form.get("chipping") === "yes",
        comfort: Number(form.get("comfort")),
        text: form.get("text") || "",
      },
    });
    setText($("checkin-form-message"), "checkin.thanks");
  } catch (error) {
    setText($("checkin-form-message"), error.key, { message: error.message });
  }
}

async function main() {
  await startI18n();
  $("checkin-back").href = `/c/${token}`;
  $("checkin-shutter").addEventListener("click", shutter);
  $("checkin-form").addEventListener("submit", submit);
  try {
    checkin = await api(`/api/checkins/${checkinId}`, { token });
  } catch (error) {
    setText($("checkin-message"), error.key, { message: error.message });
    return;
  }
  renderViews();
  showThumbs();
  fillForm();
  $("checkin").hidden = false;
  document.addEventListener("languagechange", () => {
    renderViews();
    showThumbs();
  });
}

main();
