// On the settings page (issue 17): the owner's staff accounts (add, disable or enable, set a
// password), one's own password, and one's API keys.
import { setText, t } from "./i18n.js";
import { $, api, el, when } from "./page.js";

export class AccountsPanel {
  constructor(me) {
    this.me = me; // GET /api/session
    $("accounts-form").addEventListener("submit", (event) => this.create(event));
    $("own-password-form").addEventListener("submit", (event) => this.changeOwn(event));
    $("key-form").addEventListener("submit", (event) => this.createKey(event));
  }

  async load() {
    const owner = this.me.role === "owner";
    $("accounts-admin").hidden = !owner;
    // The staff key has no account: no password of its own, no keys.
    $("own-account").hidden = !this.me.account;
    const work = [];
    if (owner) work.push(this.loadAccounts());
    if (this.me.account) work.push(this.loadKeys());
    await Promise.all(work);
  }

  async loadAccounts() {
    const { accounts } = await api("/api/accounts");
    $("accounts-list").replaceChildren(...accounts.map((a) => this.row(a)));
  }

  row(account) {
    const who = el("span", { className: "text", testid: "account-email" });
    who.textContent = `${account.name} · ${account.email} · ${t(`role.${account.role}`)}`;
    if (account.disabled) who.textContent += ` · ${t("accounts.disabled")}`;
    const toggle = el("button", {
      type: "button",
      testid: "account-toggle",
      i18n: account.disabled ? "accounts.enable" : "accounts.disable",
    });
    toggle.addEventListener("click", () => this.patch(account, { disabled: !account.disabled }));
    const reset = el("button", { type: "button", testid: "account-reset", i18n: "accounts.reset" });
    reset.addEventListener("click", () => this.reset(account));
    const li = el("li", { testid: "account-item" }, who, toggle, reset);
    li.dataset.id = account.id;
    return li;
  }

  async create(event) {
    event.preventDefault();
    const form = new FormData(event.target);
    const json = Object.fromEntries(["email", "name", "password", "role"].map((k) => [k, form.get(k)]));
    try {
      await api("/api/accounts", { method: "POST", json });
      event.target.reset();
      setText($("accounts-message"), "accounts.created");
      await this.loadAccounts();
    } catch (error) {
      setText($("accounts-message"), error.key, { message: error.message });
    }
  }

  async patch(account, json) {
    try {
      await api(`/api/accounts/${account.id}`, { method: "PATCH", json });
      await this.loadAccounts();
    } catch (error) {
      setText($("accounts-message"), error.key, { message: error.message });
    }
  }

  async reset(account) {
    const password = window.prompt(t("accounts.reset_prompt", { email: account.email }));
    if (!password) return;
    try {
      await api(`/api/accounts/${account.id}/password`, { method: "PUT", json: { password } });
      setText($("accounts-message"), "accounts.reset_done");
    } catch (error) {
      setText($("accounts-message"), error.key, { message: error.message });
    }
  }

  async changeOwn(event) {
    event.preventDefault();
    const form = event.target;
    try {
      await api("/api/account/password", {
        method: "PUT",
        json: { current: form.current.value, password: form.password.value },
      });
      form.reset();
      setText($("own-password-message"), "accounts.own.saved");
    } catch (error) {
      setText($("own-password-message"), error.key, { message: error.message });
    }
  }

  async loadKeys() {
    const { api_keys: keys } = await api("/api/api-keys");
    const mine = keys.filter((k) => k.account_id === this.me.account.id);
    $("key-list").replaceChildren(
      ...mine.map((key) => {
        const text = el("span", { className: "text", testid: "key-name" });
        text.textContent = `${key.name} · ${when(key.created_at)}`;
        const li = el("li", { testid: "key-item" }, text);
        if (key.revoked) li.append(` · ${t("keys.revoked")}`);
        else {
          const revoke = el("button", { type: "button", className: "danger", testid: "key-revoke", i18n: "keys.revoke" });
          revoke.addEventListener("click", async () => {
            await api(`/api/api-keys/${key.id}`, { method: "DELETE" });
            await this.loadKeys();
          });
          li.append(revoke);
        }
        return li;
      }),
    );
  }

  async createKey(event) {
    event.preventDefault();
    try {
      const made = await api("/api/api-keys", { method: "POST", json: { name: event.target.name.value } });
      event.target.reset();
      setText($("key-message"), "keys.created", { key: made.key });
      await this.loadKeys();
    } catch (error) {
      setText($("key-message"), error.key, { message: error.message });
    }
  }
}
