// The stylist's colour tools in the still viewer (docs/colour.md): sample a point, white
// balance from a dragged reference (or grey world), skin undertone, nail outlines and try-on.
// The server does the maths on the full-resolution original; this page only points.
import { setText, t } from "./i18n.js";
import { chip } from "./palette.js";
import { $, api, el } from "./page.js";
const SVG = "http://www.w3.org/2000/svg";

export class StillTools {
  // swatch(): the swatch a try-on uses (the one on the customer's screen, else the first chosen).
  constructor(viewer, token, { swatch }) {
    this.viewer = viewer;
    this.token = token;
    this.swatch = swatch;
    this.mode = null;
    this.outline = [];
    this.polygons = [];
    viewer.tool = this;
    viewer.onopen = (still) => this.attach(still);
    viewer.onclose = () => this.setMode(null);
    const bar = $("viewer-tools");
    const button = (key, testid, onClick) => {
      const b = el("button", { type: "button", testid, i18n: key });
      b.addEventListener("click", onClick);
      return b;
    };
    this.buttons = {
      sample: button("tools.sample", "tool-sample", () => this.setMode("sample")),
      balance: button("tools.white_balance", "tool-white-balance", () => this.setMode("balance")),
      grey: button("tools.grey_world", "tool-grey-world", () => this.whiteBalance(null)),
      undertone: button("tools.undertone", "tool-undertone", () => this.undertone()),
      outline: button("tools.outline", "tool-outline", () => this.setMode("outline")),
      save: button("tools.save_outlines", "tool-save-outlines", () => this.saveOutlines()),
      tryOn: button("tools.try_on", "tool-try-on", () => this.tryOn()),
    };
    this.result = el("div", { className: "tool-result", testid: "tool-result", role: "status" });
    bar.replaceChildren(...Object.values(this.buttons), this.result);
  }

  attach(still) {
    this.still = still;
    this.setMode(null);
    this.polygons = structuredClone(still.nails || []);
    this.outline = [];
    this.result.replaceChildren();
    this.draw();
  }

  setMode(mode) {
    this.mode = this.mode === mode ? null : mode;
    for (const [name, b] of Object.entries(this.buttons)) b.setAttribute("aria-pressed", String(name === this.mode));
    $("viewer-frame").dataset.tool = this.mode || "";
    if (this.mode === "outline") this.say("tools.outline_help");
  }

  say(key, vars) {
    this.result.replaceChildren(el("span"));
    setText(this.result.firstChild, key, vars);
  }

  async call(method, path, json) {
    try {
      return await api(path, { method, token: this.token, json });
    } catch (error) {
      this.say(error.key, { message: error.message });
      return null;
    }
  }

  pointerdown(point) {
    if (!this.mode || !this.still) return false;
    if (this.mode === "sample") this.sample(point);
    else if (this.mode === "balance") this.drag = { from: point, to: point };
    else if (this.mode === "outline") this.addPoint(point);
    return true;
  }

  pointermove(point) {
    if (this.mode !== "balance" || !this.drag) return false;
    this.drag.to = point;
    this.draw();
    return true;
  }

  pointerup(point) {
    if (this.mode !== "balance" || !this.drag) return;
    const { from } = this.drag;
    this.drag = null;
    const x = Math.min(from.x, point.x);
    const y = Math.min(from.y, point.y);
    const rect = [x, y, Math.max(1, Math.abs(point.x - from.x)), Math.max(1, Math.abs(point.y - from.y))];
    this.draw();
    this.whiteBalance(rect);
  }

  async sample(point) {
    const body = await this.call("POST", `/api/stills/${this.still.id}/sample`, { x: point.x, y: point.y, radius: 4 });
    if (!body) return;
    const swatchLike = { hex: body.hex, finish: "cream", name: body.hex, brand: "", code: "" };
    const lab = body.lab.map((v) => v.toFixed(1)).join(", ");
    this.result.replaceChildren(
      el("div", { className: "sampled", testid: "sample-result" }, chip(swatchLike, "medium"), el("span", { textContent: `${body.hex} · L*a*b* ${lab}` })),
      el("span", { className: "muted", i18n: "tools.nearest" }),
      ...body.nearest.map((n) =>
        el("div", { className: "nearest", testid: "nearest-swatch" }, chip(n.swatch), el("span", { textContent: `${n.swatch.name} · ΔE00 ${n.delta_e.toFixed(1)}` })),
      ),
    );
  }

  async whiteBalance(rect) {
    this.say("tools.working");
    const body = await this.call("POST", `/api/stills/${this.still.id}/white-balance`, rect ? { rect } : {});
    if (body) this.say("tools.white_balance_done");
    this.setMode(null);
  }

  async undertone() {
    this.say("tools.working");
    const body = await this.call("GET", `/api/stills/${this.still.id}/undertone`);
    if (!body) return;
    const line = el("div", { testid: "undertone-result" });
    setText(line, "tools.undertone_result", { tone: t(`tone.${body.tone}`), confidence: Math.round(body.confidence * 100) });
    const hints = body.hints?.map((h) => el("p", { className: "muted", i18n: `tools.hint.${h}` })) || [];
    this.result.replaceChildren(line, ...hints, el("div", { className: "swatch-row" }, ...body.suggested.map((s) => chip(s))));
  }

  addPoint(point) {
    const first = this.outline[0];
    // Clicking near the first point closes the outline.
    const near = first && Math.hypot(point.x - first.x, point.y - first.y) < 12 / this.viewer.scale;
    if (near && this.outline.length >= 3) {
      this.polygons.push(this.outline.map((p) => [p.x, p.y]));
      this.outline = [];
      this.say("tools.outline_closed", { count: this.polygons.length });
    } else {
      this.outline.push(point);
    }
    this.draw();
  }

  async saveOutlines() {
    if (this.outline.length >= 3) this.addPoint(this.outline[0]);
    if (!this.polygons.length) return this.say("tools.outline_help");
    const body = await this.call("PUT", `/api/stills/${this.still.id}/nails`, { polygons: this.polygons });
    if (body) {
      this.still.nails = body.nails;
      this.say("tools.outlines_saved", { count: body.nails.length });
    }
    this.setMode(null);
  }

  async tryOn() {
    const swatch = this.swatch();
    if (!swatch) return this.say("tools.pick_swatch");
    this.say("tools.working");
    const polygons = this.polygons.length ? this.polygons : undefined;
    const body = await this.call("POST", `/api/stills/${this.still.id}/try-on`, { swatch_id: swatch.id, polygons });
    if (body) this.say("tools.try_on_done", { name: swatch.name });
  }

  draw() {
    const overlay = $("viewer-overlay");
    const shapes = [];
    const poly = (points, cls) => {
      const p = document.createElementNS(SVG, "polygon");
      p.setAttribute("points", points.map(([x, y]) => `${x},${y}`).join(" "));
      p.setAttribute("class", cls);
      return p;
    };
    for (const polygon of this.polygons) shapes.push(poly(polygon, "nail"));
    if (this.outline.length) {
      const line = document.createElementNS(SVG, "polyline");
      line.setAttribute("points", this.outline.map((p) => `${p.x},${p.y}`).join(" "));
      line.setAttribute("class", "nail open");
      shapes.push(line);
    }
    if (this.drag) {
      const { from, to } = this.drag;
      shapes.push(poly([[from.x, from.y], [to.x, from.y], [to.x, to.y], [from.x, to.y]], "reference"));
    }
    overlay.replaceChildren(...shapes);
  }
}
