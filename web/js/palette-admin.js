// The dashboard's palette card (docs/colour.md): add, edit and remove shades, import a CSV or
// JSON file (checked whole by the server: nothing changes unless all of it is good), export.
import { setText, t } from "./i18n.js";
import { chip } from "./palette.js";
import { $, api } from "./page.js";

export class PaletteAdmin {
  constructor() {
    this.editing = null;
    this.swatches = [];
    $("swatch-form").addEventListener("submit", (event) => this.save(event));
    $("swatch-cancel").addEventListener("click", () => this.edit(null));
    $("palette-file").addEventListener("change", (event) => this.importFile(event.target));
  }

  async load() {
    const body = await api("/api/swatches");
    this.swatches = body.swatches;
    const form = $("swatch-form");
    if (!form.finish.options.length) {
      form.finish.replaceChildren(...body.finishes.map((f) => new Option(t(`finish.${f}`), f)));
      form.family.replaceChildren(...body.families.map((f) => new Option(t(`family.${f}`), f)));
    }
    this.render();
  }

  render() {
    $("palette-list").replaceChildren(
      ...this.swatches.map((s) => {
        const li = document.createElement("li");
        li.dataset.testid = "palette-row";
        li.dataset.id = s.id;
        const text = document.createElement("span");
        text.textContent = `${s.name} · ${[s.brand, s.code].filter(Boolean).join(" ")} · ${s.hex} · ${t(`finish.${s.finish}`)} · ${t(`family.${s.family}`)}`;
        const edit = document.createElement("button");
        setText(edit, "dash.palette.edit");
        edit.addEventListener("click", () => this.edit(s));
        const remove = document.createElement("button");
        remove.dataset.testid = "swatch-delete";
        setText(remove, "dash.palette.delete");
        remove.addEventListener("click", () => this.remove(s));
        li.append(chip(s, "medium"), text, edit, remove);
        return li;
      }),
    );
  }

  edit(swatch) {
    this.editing = swatch;
    const form = $("swatch-form");
    form.reset();
    if (swatch) for (const field of ["name", "brand", "code", "hex", "finish", "family"]) form[field].value = swatch[field];
    setText($("swatch-save"), swatch ? "dash.palette.update" : "dash.palette.add");
    $("swatch-cancel").hidden = !swatch;
    if (swatch) form.scrollIntoView({ block: "nearest" });
  }

  async save(event) {
    event.preventDefault();
    const form = new FormData(event.target);
    const body = Object.fromEntries(["name", "brand", "code", "hex", "finish", "family"].map((k) => [k, String(form.get(k) || "").trim()]));
    try {
      const { swatch } = this.editing
        ? await api(`/api/swatches/${this.editing.id}`, { method: "PUT", json: body })
        : await api("/api/swatches", { method: "POST", json: body });
      setText($("swatch-message"), "dash.palette.saved", { name: swatch.name });
      this.edit(null);
      await this.load();
    } catch (error) {
      setText($("swatch-message"), "dash.failed", { message: error.message });
    }
  }

  async remove(swatch) {
    if (!window.confirm(t("dash.palette.confirm_delete", { name: swatch.name }))) return;
    try {
      await api(`/api/swatches/${swatch.id}`, { method: "DELETE" });
      await this.load();
    } catch (error) {
      setText($("palette-message"), "dash.failed", { message: error.message });
    }
  }

  async importFile(input) {
    const file = input.files[0];
    input.value = "";
    if (!file) return;
    const type = file.name.toLowerCase().endsWith(".json") ? "application/json" : "text/csv";
    const mode = $("palette-replace").checked ? "replace" : "merge";
    let body;
    try {
      body = await api(`/api/swatches/import?mode=${mode}`, { method: "POST", body: file, type });
    } catch (error) {
      setText($("palette-message"), "dash.failed", { message: error.message });
      return;
    }
    setText($("palette-message"), "dash.palette.imported", body);
    await this.load();
  }
}
