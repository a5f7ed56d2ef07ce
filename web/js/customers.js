// The customer directory on the dashboard (issue 17; docs/pages.md, Customers): search by name,
// phone or email, create, a customer's page (every consultation with its messages, consents,
// check-ins), edit; the owner merges duplicates and deletes a customer or a consultation,
// after a confirmation that offers the export first (js/deletion.js).
import { setText, t } from "./i18n.js";
import { api, el, when } from "./page.js";
import { deleteBox } from "./deletion.js";

const SEARCH_DELAY_MS = 250;
const FIELDS = ["name", "email", "phone", "external_ref", "notes"];

function placeholder(input, key) {
  input.dataset.i18nPlaceholder = key;
  input.placeholder = t(key);
}

export class Customers {
  constructor(root) {
    this.root = root;
    this.timer = null;
    this.current = null;
    this.search = el("input", { type: "search", testid: "customers-search", autocomplete: "off" });
    placeholder(this.search, "customers.search");
    this.search.addEventListener("input", () => {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.load(), SEARCH_DELAY_MS);
    });
    this.list = el("ul", { className: "customers-list", testid: "customers-list" });
    this.page = el("section", { className: "customer-page", testid: "customer-page", hidden: true });
    this.status = el("p", { className: "message", role: "status", testid: "customers-status" });
    root.replaceChildren(el("h2", { i18n: "customers.title" }), this.search, this.newForm(), this.list,
      this.status, this.page);
    root.hidden = false;
  }

  newForm() {
    const name = el("input", { name: "name", required: true, maxLength: 200, testid: "new-customer-name" });
    const email = el("input", { name: "email", type: "email", maxLength: 254, testid: "new-customer-email" });
    const phone = el("input", { name: "phone", type: "tel", maxLength: 40, testid: "new-customer-phone" });
    const form = el("form", { className: "form inline", testid: "new-customer" },
      el("label", {}, el("span", { i18n: "customers.name" }), name),
      el("label", {}, el("span", { i18n: "customers.email" }), email),
      el("label", {}, el("span", { i18n: "customers.phone" }), phone),
      el("button", { className: "primary", testid: "create-customer", i18n: "customers.create" }));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const body = { name: name.value.trim() };
      if (email.value.trim()) body.email = email.value.trim();
      if (phone.value.trim()) body.phone = phone.value.trim();
      try {
        const { customer } = await api("/api/customers", { method: "POST", json: body });
        form.reset();
        await this.load();
        await this.open(customer.id);
      } catch (error) {
        this.fail(error);
      }
    });
    return form;
  }

  fail(error) {
    setText(this.status, error.key, { message: error.message });
  }

  async load() {
    let found;
    try {
      ({ customers: found } = await api(`/api/customers?q=${encodeURIComponent(this.search.value.trim())}`));
    } catch (error) {
      this.fail(error);
      return;
    }
    setText(this.status, found.length ? "" : "customers.none");
    this.list.replaceChildren(...found.map((c) => {
      const button = el("button", { className: "link", testid: "customer" },
        el("strong", {}, c.name), " ", el("span", { className: "muted" }, [c.phone, c.email].filter(Boolean).join(" · ")));
      if (c.deletion_requested_at) button.append(" ", el("span", { className: "badge", testid: "deletion-requested", i18n: "customers.deletion_requested" }));
      button.addEventListener("click", () => this.open(c.id));
      return el("li", {}, button);
    }));
  }

  async open(id) {
    let body;
    try {
      body = await api(`/api/customers/${id}`);
    } catch (error) {
      this.fail(error);
      return;
    }
    this.current = body.customer;
    const c = body.customer;
    const inputs = Object.fromEntries(FIELDS.map((field) => {
      const input = field === "notes" ? el("textarea", { rows: 2 }) : el("input");
      input.value = c[field] ?? "";
      input.dataset.testid = `customer-${field}`;
      return [field, input];
    }));
    const save = el("button", { testid: "save-customer", i18n: "customers.save" });
    save.addEventListener("click", () => this.save(inputs));
    const pageStatus = el("p", { className: "message", role: "status", testid: "customer-status" });
    this.pageStatus = pageStatus;
    const consultations = el("ul", { className: "customer-consultations", testid: "customer-consultations" },
      ...body.consultations.map((k) => this.consultationItem(k)));
    const newConsultation = el("button", { testid: "customer-new-consultation", i18n: "customers.new_consultation" });
    newConsultation.addEventListener("click", async () => {
      try {
        await api("/api/consultations", { method: "POST", json: { customer_id: c.id } });
        await this.open(c.id);
      } catch (error) {
        setText(pageStatus, error.key, { message: error.message });
      }
    });
    const requested = c.deletion_requested_at
      ? el("p", { className: "warning", testid: "customer-deletion-requested", i18n: "customers.deletion_requested_at" })
      : "";
    if (requested) setText(requested, "customers.deletion_requested_at", { time: when(c.deletion_requested_at) });
    this.page.replaceChildren(
      el("h3", { testid: "customer-title" }, c.name),
      requested,
      ...FIELDS.map((field) => el("label", {}, el("span", { i18n: `customers.${field}` }), inputs[field])),
      save,
      el("h4", { i18n: "customers.consultations" }),
      newConsultation,
      consultations,
      el("h4", { i18n: "customers.consents" }),
      el("ul", { testid: "customer-consents" }, ...body.consents.map((k) => {
        const item = el("li");
        setText(item, "customers.consent_given", { version: k.version, time: when(k.given_at) });
        return item;
      })),
      // Aftercare check-ins (issue 16), newest due first, as the API returns them.
      el("h4", { i18n: "customers.check_ins", hidden: body.check_ins.length === 0 }),
      el("ul", { testid: "customer-check-ins" }, ...body.check_ins.map((k) => {
        const item = el("li");
        setText(item, `checkins.state.${k.state}`, { when: when(k.answered_at ?? k.sent_at ?? k.due_at) });
        return item;
      })),
      this.mergeBox(c),
      deleteBox({
        url: `/api/customers/${c.id}`,
        exportUrl: `/api/customers/${c.id}/export`,
        label: "customers.delete",
        status: () => this.pageStatus,
        after: async () => {
          this.page.hidden = true;
          await this.load();
        },
      }),
      pageStatus,
    );
    this.page.hidden = false;
  }

  consultationItem(k) {
    const record = el("a", { href: `/r/${k.id}`, testid: "customer-consultation" }, when(k.created_at));
    const messages = el("ul", { className: "customer-messages" },
      ...k.messages.map((m) => el("li", { testid: "customer-message" }, el("span", { className: "muted", i18n: `customers.from.${m.from}` }), " ", m.text)));
    return el("li", {}, record, " ", k.summary || "", messages,
      deleteBox({
        url: `/api/consultations/${k.id}`,
        exportUrl: `/api/consultations/${k.id}/export`,
        label: "customers.delete_consultation",
        status: () => this.pageStatus,
        after: () => this.open(this.current.id),
      }));
  }

  mergeBox(c) {
    const into = el("input", { testid: "merge-into", autocomplete: "off" });
    placeholder(into, "customers.merge_into");
    const merge = el("button", { testid: "merge", i18n: "customers.merge" });
    merge.addEventListener("click", async () => {
      // The other customer by what staff type (a name, phone or email): the first match
      // that is not this one.
      try {
        const { customers } = await api(`/api/customers?q=${encodeURIComponent(into.value.trim())}`);
        const target = customers.find((other) => other.id !== c.id) || customers[0];
        if (!target) {
          setText(this.pageStatus, "customers.none");
          return;
        }
        const { customer } = await api(`/api/customers/${c.id}/merge`, { method: "POST", json: { into: target.id } });
        await this.load();
        await this.open(customer.id);
      } catch (error) {
        setText(this.pageStatus, error.key, { message: error.message });
      }
    });
    return el("div", { className: "merge-box" }, into, merge);
  }

  async save(inputs) {
    const body = {};
    for (const [field, input] of Object.entries(inputs)) {
      const value = input.value.trim();
      if (value !== (this.current[field] ?? "")) body[field] = value || (field === "name" || field === "notes" ? value : null);
    }
    if (!Object.keys(body).length) return;
    try {
      const { customer } = await api(`/api/customers/${this.current.id}`, { method: "PATCH", json: body });
      this.current = customer;
      setText(this.pageStatus, "customers.saved");
      await this.load();
    } catch (error) {
      setText(this.pageStatus, error.key, { message: error.message });
    }
  }
}
