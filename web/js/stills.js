// Stills in the pages: the customer's camera photo for a capture, the notice that a photo was
// taken, the console's strip of stills and the full-resolution viewer. docs/stills.md.
import { setText, t, translate } from "./i18n.js";
import { chip } from "./palette.js";
import { $, api, el } from "./page.js";

// "4000×3000 · video 1280×720": a photo's size, and the video's when it was taken.
export function sizes(still) {
  const photo = `${still.width}×${still.height}`;
  if (!still.video_width || still.source === "video") return photo;
  return `${photo} · ${t("stills.video_size", { size: `${still.video_width}×${still.video_height}` })}`;
}

export async function uploadPhoto(url, token, blob) {
  return (await api(url, { method: "POST", token, body: blob, type: blob.type || "image/png" })).still;
}

// Staff pages authenticate with their session cookie: no token to add.
export function withToken(url, token, extra = "") {
  if (!token) return extra ? `${url}?${extra.slice(1)}` : url;
  return `${url}?token=${encodeURIComponent(token)}${extra}`;
}

// The customer always sees that a photo was taken.
let noticeTimer = null;
export function showNotice(still, token) {
  const notice = $("photo-notice");
  $("photo-notice-thumb").src = withToken(still.thumb_url, token);
  setText($("photo-notice-text"), still.source === "video" ? "stills.notice.video" : "stills.notice.camera");
  notice.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => (notice.hidden = true), 6000);
}

export class StillStrip {
  constructor(token) {
    this.token = token;
    this.stills = new Map();
    this.viewer = new Viewer(token);
  }

  // Newest first; the same still twice (history, then the live message) is shown once.
  add(still) {
    if (this.stills.has(still.id)) return;
    this.stills.set(still.id, still);
    const item = document.createElement("button");
    item.className = "still";
    item.dataset.testid = "still";
    item.dataset.source = still.source;
    item.dataset.flags = still.flags.join(" ");
    const img = document.createElement("img");
    img.src = withToken(still.thumb_url, this.token);
    img.alt = "";
    const badge = document.createElement("span");
    badge.className = "badge";
    setText(badge, `stills.source.${still.source}`);
    // The photo's size against the video's: what the camera gave beyond the stream.
    const size = el("span", { className: "size", testid: "still-size" });
    size.textContent = sizes(still);
    item.append(img, badge, size);
    for (const flag of still.flags) {
      const f = document.createElement("span");
      f.className = "flag";
      setText(f, `stills.flag.${flag}`);
      item.append(f);
    }
    item.addEventListener("click", () => this.viewer.open(still, this.stills.get(still.parent_id) || null));
    $("still-strip").prepend(item);
    $("stills-empty").hidden = true;
    this.showHints(still);
  }

  showHints(still) {
    const hints = $("still-hints");
    hints.replaceChildren(
      ...still.hints.map((hint) => {
        const li = document.createElement("li");
        setText(li, `stills.hint.${hint}`);
        return li;
      }),
    );
    hints.hidden = still.hints.length === 0;
  }
}

const VIEWER = `
  <div class="viewer-bar">
    <button id="viewer-fit" data-testid="viewer-fit" data-i18n="stills.fit"></button>
    <button id="viewer-actual" data-testid="viewer-actual" data-i18n="stills.actual"></button>
    <button id="viewer-out" data-testid="viewer-out" data-i18n-aria-label="stills.zoom_out">\u2212</button>
    <button id="viewer-in" data-testid="viewer-in" data-i18n-aria-label="stills.zoom_in">+</button>
    <span id="viewer-zoom" data-testid="viewer-zoom"></span>
    <a id="viewer-download" class="button" data-testid="viewer-download" data-i18n="stills.download"></a>
    <button id="viewer-close" data-testid="viewer-close" data-i18n="stills.close"></button>
  </div>
  <div id="viewer-tools" class="viewer-tools" data-testid="viewer-tools"></div>
  <div id="viewer-frame" class="viewer-frame"><img id="viewer-image" data-testid="viewer-image" alt="">
    <img id="viewer-compare" class="viewer-compare" data-testid="viewer-compare" alt="" hidden>
    <svg id="viewer-overlay" class="viewer-overlay" data-testid="viewer-overlay"></svg></div>
  <dl id="viewer-details" class="viewer-details" data-testid="viewer-details"></dl>`;

// One viewer per page, made on first use.
function mountViewer() {
  const viewer = document.createElement("div");
  viewer.id = "viewer";
  viewer.className = "viewer";
  viewer.dataset.testid = "viewer";
  viewer.setAttribute("role", "dialog");
  viewer.setAttribute("aria-modal", "true");
  viewer.hidden = true;
  viewer.innerHTML = VIEWER;
  translate(viewer);
  document.body.append(viewer);
}

// Full resolution with zoom and pan. 100% is one image pixel per screen pixel.
export class Viewer {
  constructor(token) {
    if (!$("viewer")) mountViewer();
    this.token = token;
    this.scale = 1;
    this.x = 0;
    this.y = 0;
    const image = $("viewer-image");
    const frame = $("viewer-frame");
    $("viewer-close").addEventListener("click", () => this.close());
    $("viewer-fit").addEventListener("click", () => this.fit());
    $("viewer-actual").addEventListener("click", () => this.zoomTo(1 / devicePixelRatio));
    $("viewer-in").addEventListener("click", () => this.zoomTo(this.scale * 1.5));
    $("viewer-out").addEventListener("click", () => this.zoomTo(this.scale / 1.5));
    frame.addEventListener("wheel", (event) => {
      event.preventDefault();
      this.zoomTo(this.scale * (event.deltaY < 0 ? 1.2 : 1 / 1.2));
    }, { passive: false });
    let drag = null;
    // Two fingers pinch-zoom about their midpoint; one drags (or works a colour tool).
    const pointers = new Map();
    let pinch = null;
    const spread = () => {
      const [a, b] = [...pointers.values()];
      return { d: Math.hypot(a.x - b.x, a.y - b.y), x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 };
    };
    frame.addEventListener("pointerdown", (event) => {
      pointers.set(event.pointerId, { x: event.clientX, y: event.clientY });
      try {
        frame.setPointerCapture(event.pointerId);
      } catch {
        // A pointer the browser no longer tracks: the move events still come here.
      }
      if (pointers.size === 2) {
        drag = null;
        pinch = { ...spread(), scale: this.scale };
        return;
      }
      // A colour tool takes the click; otherwise the picture is dragged.
      if (this.tool?.pointerdown(this.imagePoint(event), event)) return;
      drag = { x: event.clientX - this.x, y: event.clientY - this.y };
    });
    frame.addEventListener("pointermove", (event) => {
      if (pointers.has(event.pointerId)) pointers.set(event.pointerId, { x: event.clientX, y: event.clientY });
      if (pinch && pointers.size === 2) {
        const now = spread();
        const box = frame.getBoundingClientRect();
        if (pinch.d > 0) this.zoomTo((pinch.scale * now.d) / pinch.d, now.x - box.left, now.y - box.top);
        return;
      }
      if (this.tool?.pointermove(this.imagePoint(event), event)) return;
      if (!drag) return;
      this.x = event.clientX - drag.x;
      this.y = event.clientY - drag.y;
      this.apply();
    });
    const up = (event) => {
      pointers.delete(event.pointerId);
      if (pinch) {
        if (pointers.size < 2) pinch = null;
        return;
      }
      drag = null;
      this.tool?.pointerup(this.imagePoint(event), event);
    };
    frame.addEventListener("pointerup", up);
    frame.addEventListener("pointercancel", up);
    image.addEventListener("load", () => this.fit());
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && !$("viewer").hidden) this.close();
    });
  }

  // Where on the picture (in its own pixels) a pointer event is.
  imagePoint(event) {
    const frame = $("viewer-frame").getBoundingClientRect();
    return {
      x: Math.round((event.clientX - frame.left - this.x) / this.scale),
      y: Math.round((event.clientY - frame.top - this.y) / this.scale),
    };
  }

  // A derived image (white-balanced, try-on) is shown beside the photo it was made from.
  open(still, parent = null) {
    this.still = still;
    this.parent = parent;
    $("viewer").hidden = false;
    $("viewer").dataset.stillId = still.id;
    const compare = $("viewer-compare");
    compare.hidden = !parent;
    if (parent) compare.src = withToken(parent.url, this.token);
    else compare.removeAttribute("src");
    $("viewer-image").src = withToken(still.url, this.token);
    this.onopen?.(still);
    $("viewer-download").href = withToken(still.url, this.token, "&download=1");
    const details = [
      ["stills.detail.source", t(`stills.source.${still.source}`)],
      ...(still.derivation?.swatch ? [["stills.detail.swatch", `${still.derivation.swatch.name} ${still.derivation.swatch.hex}`]] : []),
      ["stills.detail.size", `${still.width} × ${still.height}`],
      ...(still.video_width ? [["stills.detail.video_size", `${still.video_width} × ${still.video_height}`]] : []),
      ["stills.detail.bytes", `${(still.bytes / 1024 / 1024).toFixed(2)} MB`],
      ["stills.detail.type", still.media_type],
      ["stills.detail.sharpness", String(still.sharpness)],
      ["stills.detail.exposure", `${Math.round(still.exposure * 100)} %`],
      ["stills.detail.flags", still.flags.map((f) => t(`stills.flag.${f}`)).join(", ") || t("stills.flag.none")],
      ["stills.detail.taken", new Date(still.created_at).toLocaleString()],
      ["stills.detail.sha256", still.sha256],
    ];
    $("viewer-details").replaceChildren(
      ...details.flatMap(([key, value]) => {
        const dt = document.createElement("dt");
        setText(dt, key);
        const dd = document.createElement("dd");
        dd.textContent = value;
        return [dt, dd];
      }),
    );
  }

  close() {
    $("viewer").hidden = true;
    $("viewer-image").removeAttribute("src");
    this.onclose?.();
  }

  fit() {
    const frame = $("viewer-frame").getBoundingClientRect();
    const image = $("viewer-image");
    if (!image.naturalWidth) return;
    const overlay = $("viewer-overlay");
    overlay.setAttribute("viewBox", `0 0 ${image.naturalWidth} ${image.naturalHeight}`);
    overlay.setAttribute("width", image.naturalWidth);
    overlay.setAttribute("height", image.naturalHeight);
    // Side by side: both pictures fit, the original on the left.
    const across = this.parent ? 2 * image.naturalWidth + 16 : image.naturalWidth;
    this.scale = Math.min(frame.width / across, frame.height / image.naturalHeight, 1);
    this.x = (frame.width - across * this.scale) / 2 + (across - image.naturalWidth) * this.scale;
    this.y = (frame.height - image.naturalHeight * this.scale) / 2;
    this.apply();
  }

  // Zoom keeping a point of the view where it is: the centre, or the fingers' midpoint.
  zoomTo(scale, cx = null, cy = null) {
    const frame = $("viewer-frame").getBoundingClientRect();
    const next = Math.min(16, Math.max(0.02, scale));
    cx ??= frame.width / 2;
    cy ??= frame.height / 2;
    this.x = cx - ((cx - this.x) * next) / this.scale;
    this.y = cy - ((cy - this.y) * next) / this.scale;
    this.scale = next;
    this.apply();
  }

  apply() {
    const image = $("viewer-image");
    const transform = `translate(${this.x}px, ${this.y}px) scale(${this.scale})`;
    image.style.transform = transform;
    $("viewer-overlay").style.transform = transform;
    if (this.parent) {
      // The original sits to the left of the derived copy, at the same scale.
      const width = (this.still.width + 16) * this.scale;
      $("viewer-compare").style.transform = `translate(${this.x - width}px, ${this.y}px) scale(${this.scale})`;
    }
    // At and above 100% show pixels as they are, never smoothed.
    image.classList.toggle("pixelated", this.scale * devicePixelRatio >= 1);
    setText($("viewer-zoom"), "stills.zoom", { percent: Math.round(this.scale * devicePixelRatio * 100) });
  }
}

// "Same again": the earlier consultation's agreed design and key photos, on display.
export function renderEarlier(section, earlier, token) {
  section.hidden = !earlier;
  if (!earlier) return;
  let viewer = null;
  section.querySelector("[data-earlier-summary]").textContent = earlier.summary || "";
  // The shades chosen last time: "the same again" usually means these.
  section.querySelector("[data-earlier-chosen]").replaceChildren(
    ...(earlier.chosen || []).map(({ swatch }) => {
      const item = document.createElement("span");
      item.className = "chosen-item";
      const c = chip(swatch);
      const name = document.createElement("span");
      name.textContent = `${swatch.name} ${swatch.hex}`;
      item.append(c, name);
      return item;
    }),
  );
  section.querySelector("[data-earlier-stills]").replaceChildren(
    ...earlier.stills.map((still) => {
      const button = document.createElement("button");
      button.className = "still";
      button.dataset.testid = "earlier-still";
      const img = document.createElement("img");
      img.src = withToken(still.thumb_url, token);
      img.alt = "";
      button.append(img);
      button.addEventListener("click", () => {
        viewer ||= new Viewer(token);
        viewer.open(still);
      });
      return button;
    }),
  );
}
