// The owner's Delete, on the dashboard's customer pages and the record page: a confirmation
// that offers the export first (when there is one), then the DELETE; the server refuses anyone
// but the owner, and its message is shown in `status`.
import { setText } from "./i18n.js";
import { api, el } from "./page.js";

export function deleteBox({ url, exportUrl = null, label, status, after }) {
  const ask = el("button", { className: "danger", testid: "delete", i18n: label });
  const confirm = el("div", { className: "confirm", testid: "confirm-delete", hidden: true },
    el("p", { i18n: exportUrl ? "customers.delete_confirm" : "delete.confirm" }),
    exportUrl ? el("a", { href: exportUrl, testid: "export-first", i18n: "customers.export_first" }) : "",
    el("button", { className: "danger", testid: "confirm-delete-yes", i18n: "customers.delete_yes" }),
    el("button", { testid: "confirm-delete-no", i18n: "customers.delete_no" }));
  ask.addEventListener("click", () => (confirm.hidden = false));
  confirm.querySelector("[data-testid=confirm-delete-no]").addEventListener("click", () => (confirm.hidden = true));
  confirm.querySelector("[data-testid=confirm-delete-yes]").addEventListener("click", async () => {
    try {
      await api(url, { method: "DELETE" });
      confirm.hidden = true;
      await after();
    } catch (error) {
      setText(status(), error.key, { message: error.message });
    }
  });
  return el("div", { className: "delete-box" }, ask, confirm);
}
