// Swatches in the call (docs/colour.md): the stylist's palette panel, and the customer's chip
// drawn at the swatch's exact sRGB colour as a CSS colour, never through the video.
import { setText, t } from "./i18n.js";
import { $, api, el } from "./page.js";

const RECENT = 8;

export async function fetchPalette(token) {
  return await api("/api/swatches", { token });
}

// A small chip for lists: the exact colour, the finish hinted by an overlay class.
export function chip(swatch, size = "small") {
  const node = el("span", { className: `chip chip-${size} finish-${swatch.finish}` });
  node.style.backgroundColor = swatch.hex;
  node.title = `${swatch.name} ${swatch.brand} ${swatch.code} ${swatch.hex}`.replace(/\s+/g, " ").trim();
  return node;
}

function label(swatch) {
  return [swatch.name, swatch.brand, swatch.code].filter(Boolean).join(" · ");
}

// The stylist's panel, in the console: search, filter by family and finish, recently shown.
export class PalettePanel {
  constructor(root, session, token) {
    this.session = session;
    this.token = token;
    this.swatches = [];
    this.current = null;
    this.chosen = [];
    this.recent = [];
    root.replaceChildren(this.render());
    this.load();
  }

  render() {
    const section = el("section", { className: "palette", testid: "palette" });
    this.showing = el("div", { className: "showing", testid: "palette-showing" });
    this.search = el("input", { type: "search", testid: "palette-search", autocomplete: "off" });
    this.search.placeholder = t("palette.search");
    this.family = el("select", { testid: "palette-family" });
    this.finish = el("select", { testid: "palette-finish" });
    for (const input of [this.search, this.family, this.finish]) input.addEventListener("input", () => this.renderGrid());
    this.recentRow = el("div", { className: "swatch-row", testid: "palette-recent" });
    this.chosenRow = el("div", { className: "swatch-row", testid: "palette-chosen" });
    this.grid = el("div", { className: "swatch-grid", testid: "palette-grid" });
    section.append(
      el("h2", { i18n: "palette.title" }),
      this.showing,
      el("div", { className: "palette-filters" }, this.search, this.family, this.finish),
      el("h3", { i18n: "palette.recent" }), this.recentRow,
      el("h3", { i18n: "palette.chosen" }), this.chosenRow,
      this.grid,
    );
    return section;
  }

  async load() {
    try {
      const body = await fetchPalette(this.token);
      this.swatches = body.swatches;
      this.family.replaceChildren(new Option(t("palette.all_families"), ""), ...body.families.map((f) => new Option(t(`family.${f}`), f)));
      this.finish.replaceChildren(new Option(t("palette.all_finishes"), ""), ...body.finishes.map((f) => new Option(t(`finish.${f}`), f)));
    } catch {
      this.grid.replaceChildren(el("p", { className: "muted", i18n: "palette.failed" }));
      return;
    }
    this.renderGrid();
  }

  renderGrid() {
    const query = this.search.value.trim().toLowerCase();
    const matches = this.swatches.filter(
      (s) =>
        (!this.family.value || s.family === this.family.value) &&
        (!this.finish.value || s.finish === this.finish.value) &&
        (!query || `${s.name} ${s.brand} ${s.code} ${s.hex}`.toLowerCase().includes(query)),
    );
    this.grid.replaceChildren(...matches.map((s) => this.button(s)));
    if (!matches.length) this.grid.append(el("p", { className: "muted", i18n: "palette.none" }));
  }

  button(swatch) {
    const chosen = this.chosen.some((c) => c.swatch.id === swatch.id);
    const show = el("button", { className: "swatch", testid: "swatch", type: "button" }, chip(swatch), el("span", { textContent: swatch.name }));
    show.dataset.swatchId = swatch.id;
    show.setAttribute("aria-pressed", String(this.current?.id === swatch.id));
    show.addEventListener("click", () => this.session.showSwatch(swatch.id));
    const choose = el("button", { className: "choose", testid: "choose", type: "button", textContent: chosen ? "♥" : "♡" });
    choose.dataset.swatchId = swatch.id;
    choose.setAttribute("aria-pressed", String(chosen));
    choose.setAttribute("aria-label", t(chosen ? "palette.unchoose" : "palette.choose"));
    choose.addEventListener("click", () => this.session.chooseSwatch(swatch.id, !chosen));
    return el("div", { className: "swatch-item" }, show, choose);
  }

  // What the customer sees now.
  setCurrent(swatch) {
    this.current = swatch;
    if (swatch) {
      this.recent = [swatch, ...this.recent.filter((s) => s.id !== swatch.id)].slice(0, RECENT);
      const clear = el("button", { type: "button", testid: "palette-clear", i18n: "palette.clear" });
      clear.addEventListener("click", () => this.session.showSwatch(null));
      this.showing.replaceChildren(chip(swatch, "medium"), el("span", { textContent: `${t("palette.showing")} ${label(swatch)}` }), clear);
    } else {
      this.showing.replaceChildren(el("span", { className: "muted", i18n: "palette.showing_none" }));
    }
    this.recentRow.replaceChildren(...this.recent.map((s) => this.mini(s, () => this.session.showSwatch(s.id))));
    this.renderGrid();
  }

  // After a reload: the shades shown earlier in this consultation, newest first.
  seedRecent(shown) {
    for (const swatch of shown) this.recent = [swatch, ...this.recent.filter((s) => s.id !== swatch.id)];
    this.recent = this.recent.slice(0, RECENT);
    this.recentRow.replaceChildren(...this.recent.map((s) => this.mini(s, () => this.session.showSwatch(s.id))));
  }

  setChosen(chosen) {
    this.chosen = chosen;
    this.chosenRow.replaceChildren(...chosen.map((c) => this.mini(c.swatch, () => this.session.showSwatch(c.swatch.id))));
    this.renderGrid();
  }

  mini(swatch, onClick) {
    const button = el("button", { className: "mini", type: "button", title: label(swatch) }, chip(swatch));
    button.dataset.swatchId = swatch.id;
    button.addEventListener("click", onClick);
    return button;
  }
}

// The customer's screen: a large chip of the exact colour beside the self view, with its name
// and its finish suggested beside the colour (never over it), until the stylist clears it.
export function renderSwatchCard(card, swatch) {
  card.hidden = !swatch;
  if (!swatch) return;
  const colour = el("div", { className: "swatch-colour", testid: "swatch-chip" });
  colour.style.backgroundColor = swatch.hex;
  colour.dataset.hex = swatch.hex;
  const finish = el("div", { className: `swatch-finish finish-${swatch.finish}`, testid: "swatch-finish" });
  finish.style.backgroundColor = swatch.hex;
  const text = el(
    "div",
    { className: "swatch-text" },
    el("strong", { textContent: swatch.name, testid: "swatch-name" }),
    el("span", { textContent: [swatch.brand, swatch.code].filter(Boolean).join(" ") }),
    el("span", { className: "muted", textContent: `${t(`finish.${swatch.finish}`)} · ${swatch.hex}` }),
  );
  card.replaceChildren(colour, finish, text);
}

export function renderChosen(list, chosen) {
  list.hidden = !chosen.length;
  list.replaceChildren(
    el("span", { className: "muted", i18n: "palette.your_choices" }),
    ...chosen.map((c) => el("span", { className: "chosen-item", testid: "chosen-swatch" }, chip(c.swatch), el("span", { textContent: c.swatch.name }))),
  );
}
