// Who is signed in, and whose each consultation is (issue 17): the staff's names for the
// "whose" labels, and the assignment selector (the owner assigns any consultation; a stylist
// takes an unassigned one).
import { setText, t } from "./i18n.js";
import { api, el } from "./page.js";

export class Staff {
  constructor() {
    this.me = null; // GET /api/session: { role, account }
    this.names = new Map();
  }

  async load() {
    this.me = await api("/api/session");
    const { staff } = await api("/api/staff");
    this.names = new Map(staff.map((s) => [s.id, s]));
    return this;
  }

  get owner() {
    return this.me?.role === "owner";
  }

  get accountId() {
    return this.me?.account?.id || null;
  }

  // "Jane (stylist)", or the staff key's name.
  whoami() {
    const account = this.me?.account;
    if (!account) return t("dash.whoami.key");
    return t("dash.whoami", { name: account.name, role: t(`role.${account.role}`) });
  }

  // The assignee's name, or "Unassigned".
  whose(assignedTo) {
    if (!assignedTo) return t("whose.unassigned");
    return this.names.get(assignedTo)?.name || assignedTo;
  }

  // A label of whose it is; with a selector where this person may change it.
  assignBox(c, changed) {
    const box = el("div", { className: "whose muted" }, `${t("whose.label")}: `);
    const label = el("span", { testid: "whose" });
    label.textContent = this.whose(c.assigned_to);
    box.append(label);
    const put = async (accountId) => {
      try {
        await api(`/api/consultations/${c.id}/assignee`, { method: "PUT", json: { account_id: accountId } });
        await changed();
      } catch (error) {
        setText(label, error.key, { message: error.message });
      }
    };
    if (this.owner) {
      const select = el("select", { testid: "assign" });
      select.setAttribute("aria-label", t("whose.label"));
      select.append(el("option", { value: "" }, t("whose.unassigned")));
      for (const s of this.names.values()) {
        select.append(el("option", { value: s.id }, `${s.name} (${t(`role.${s.role}`)})`));
      }
      select.value = c.assigned_to || "";
      select.addEventListener("change", () => put(select.value || null));
      label.hidden = true;
      box.append(select);
    } else if (!c.assigned_to && this.accountId) {
      const take = el("button", { type: "button", className: "link", testid: "take", i18n: "whose.take" });
      take.addEventListener("click", () => put(this.accountId));
      box.append(" ", take);
    }
    return box;
  }
}

// The console's "whose it is" (the stylist's link: GET /api/staff takes it too).
export async function showWhose(node, assignedTo, token) {
  if (!assignedTo) {
    setText(node, "whose.unassigned");
    return;
  }
  try {
    const { staff } = await api("/api/staff", { token });
    node.textContent = staff.find((s) => s.id === assignedTo)?.name || assignedTo;
  } catch {
    node.textContent = assignedTo;
  }
}
