// What the pop shows when the call has no single customer yet: the chooser for a shared
// number, the withheld caller, the unknown caller (quick-create); the last two can search and
// link the call to the customer found. Choosing re-pops the call as a new version.

import { searchBox } from "./desk.js";
import { t } from "./i18n.js";
import { customerTypeLabel } from "./profile.js";
import { ago, h, phoneNumber, pick } from "./ui.js";

const CUSTOMER_TYPES = ["consumer", "industrial", "institutional", "government"];

export function callerOf(doc) {
  return (doc.call && doc.call.caller) || {};
}

export function spokenNumber(caller) {
  return caller.national || caller.e164 || caller.raw;
}

export function tierText(tier) {
  return { high: t("high value"), medium: t("medium value"), low: t("low value") }[tier] || tier;
}

/**
 * The panels, bound to the page: `onPop(message)` renders a pop answered by a choice,
 * `onOpenCustomer(id)` opens a customer found by search.
 */
export function callerPanels({ session, onPop, onOpenCustomer }) {
  function chooser(id, doc, safe) {
    const candidates = (doc.match && doc.match.candidates) || [];
    const chosen = doc.customer ? pick(doc.customer, "id", "customer_id") : null;
    const status = h("p", { class: "form-error", role: "alert" });
    const buttons = candidates.map((cand, index) => {
      const cid = pick(cand, "customer_id", "id");
      const tier = pick(cand, "value_tier");
      const lastOrder = pick(cand, "last_order_at");
      const lastContact = pick(cand, "last_contact_at");
      const details = [
        customerTypeLabel(pick(cand, "customer_type") || ""),
        tier ? tierText(tier) : null,
        lastOrder ? t("last order {when}", { when: ago(lastOrder) }) : t("no orders"),
        lastContact ? t("last call {when}", { when: ago(lastContact) }) : null,
        pick(cand, "external_ref") ? t("ref {ref}", { ref: cand.external_ref }) : null,
      ].filter(Boolean);
      return h(
        "li",
        null,
        h(
          "button",
          {
            type: "button",
            class: `candidate${cid === chosen ? " candidate-chosen" : ""}`,
            "aria-pressed": cid === chosen ? "true" : "false",
            "aria-keyshortcuts": index < 9 ? String(index + 1) : null,
            dataset: { choice: index + 1 },
            onclick: (event) => chooseCustomer(id, cid, event.currentTarget, status),
          },
          index < 9 ? h("kbd", { class: "candidate-key", "aria-hidden": "true" }, String(index + 1)) : null,
          h("span", { class: "candidate-name" }, cand.name || t("Customer {id}", { id: cid })),
          cand.chosen_before ? h("span", { class: "candidate-chosen-before" }, t("✓ chosen before for this number")) : null,
          h("span", { class: "candidate-meta" }, details.join(" · ")),
        ),
      );
    });
    const caller = callerOf(doc);
    const titleId = doc.customer ? `pop-${safe}-chooser` : `pop-${safe}-name`;
    return h(
      "section",
      { class: "chooser", "aria-labelledby": titleId },
      h(
        "h2",
        { id: titleId, class: doc.customer ? "chooser-title small" : "chooser-title" },
        doc.customer
          ? t("Not them? Others share this number")
          : t("{count} customers share {number}", { count: candidates.length, number: spokenNumber(caller) || t("this number") }),
      ),
      doc.customer ? null : h("p", { class: "muted" }, t("Ask the caller's name, then choose. Your choice is remembered for this number.")),
      h("ul", { class: "candidate-list" }, buttons),
      status,
    );
  }

  async function chooseCustomer(callId, customerId, button, status) {
    if (button) button.disabled = true;
    status.textContent = "";
    try {
      const result = await session.request("POST", `/api/calls/${encodeURIComponent(callId)}/match`, { customer_id: customerId });
      // The server re-pops over the websocket; use the answer too in case it carries the pop.
      if (result && result.customer && result.call) onPop({ ...result, type: "pop" });
      return true;
    } catch (error) {
      status.textContent = t("Could not choose: {reason}", { reason: error.message });
      if (button) button.disabled = false;
      return false;
    }
  }

  /** Search inside a pop with no customer: link the call to whom the caller says they are. */
  function findCallerSearch(callId, withheld) {
    const search = searchBox({
      session,
      label: withheld ? t("Find the caller (account number, postcode, e-mail or name)") : t("Already a customer? Find them"),
      linkLabel: t("This is the caller"),
      onOpen: (customer) => onOpenCustomer(customer.id),
      onLink: (customer, button, status) => chooseCustomer(callId, customer.id, button, status),
    });
    return search.element;
  }

  function withheldPanel(callId, safe) {
    return h(
      "div",
      { class: "caller-panel caller-withheld" },
      h("h2", { id: `pop-${safe}-name`, class: "customer-name" }, h("span", { "aria-hidden": "true" }, "⊘ "), t("Number withheld")),
      h("p", null, t("The caller's number is hidden and no account number was entered. Ask for their account number, postcode or email to find them.")),
      findCallerSearch(callId, true),
    );
  }

  function unknownCallerPanel(callId, doc, safe) {
    const caller = callerOf(doc);
    const match = doc.match || {};
    const kind = pick(match, "number_type");
    const where = [pick(match, "location"), pick(match, "country") || pick(match, "region"), kind && kind !== "unknown" ? kind.replace(/_/g, " ") : null, pick(match, "carrier")]
      .filter((part, index, all) => part && all.indexOf(part) === index)
      .join(" · ");
    const status = h("p", { class: "form-note", role: "status" });
    const form = h(
      "form",
      { class: "quick-create", "aria-labelledby": `pop-${safe}-create`, onsubmit: (event) => quickCreate(event, callId, caller, status) },
      h("h3", { id: `pop-${safe}-create` }, t("Quick-create this customer")),
      h(
        "div",
        { class: "form-grid" },
        field(`qc-name-${safe}`, t("Name"), h("input", { id: `qc-name-${safe}`, name: "name", required: true, autocomplete: "off" })),
        field(`qc-email-${safe}`, t("Email"), h("input", { id: `qc-email-${safe}`, name: "email", type: "email", autocomplete: "off" })),
        field(
          `qc-type-${safe}`,
          t("Customer type"),
          h("select", { id: `qc-type-${safe}`, name: "customer_type" }, CUSTOMER_TYPES.map((type) => h("option", { value: type }, customerTypeLabel(type)))),
        ),
        field(`qc-phone-${safe}`, t("Phone"), h("input", { id: `qc-phone-${safe}`, name: "phone", value: caller.e164 || caller.raw || "", autocomplete: "off" })),
      ),
      h("label", { class: "check" }, h("input", { type: "checkbox", name: "marketing_consent" }), ` ${t("Caller agrees to marketing")}`),
      h("button", { type: "submit", class: "btn btn-primary" }, t("Create customer")),
      status,
    );
    return h(
      "div",
      { class: "caller-panel caller-unknown" },
      h("h2", { id: `pop-${safe}-name`, class: "customer-name" }, t("New caller")),
      h("p", { class: "identity-meta" }, phoneNumber(caller), where ? ` · ${where}` : "", ` · ${t("not in our records")}`),
      findCallerSearch(callId, false),
      form,
    );
  }

  function field(id, label, control) {
    return h("div", { class: "field" }, h("label", { for: id }, label), control);
  }

  async function quickCreate(event, callId, caller, status) {
    event.preventDefault();
    const form = event.currentTarget;
    const data = new FormData(form);
    const body = {
      name: String(data.get("name") || "").trim(),
      phone: String(data.get("phone") || "").trim() || caller.e164 || caller.raw,
      customer_type: data.get("customer_type"),
      marketing_consent: data.get("marketing_consent") === "on",
    };
    const email = String(data.get("email") || "").trim();
    if (email) body.email = email;
    if (!body.name) {
      status.textContent = t("Enter the caller's name.");
      form.elements.name.focus();
      return;
    }
    await createCustomer(callId, body, form, status);
  }

  /** POST /api/customers, then link the call; a number that is already a customer's (409)
   * offers to link the call to them instead, or to create a customer who shares it. */
  async function createCustomer(callId, body, form, status) {
    const button = form.querySelector("button[type=submit]");
    const taken = form.querySelector(".number-taken");
    if (taken) taken.remove();
    button.disabled = true;
    status.textContent = t("Creating…");
    try {
      const created = await session.request("POST", "/api/customers", body);
      const customerId = pick(created, "id", "customer_id");
      status.textContent = t("{name} created.", { name: body.name });
      if (customerId) await session.request("POST", `/api/calls/${encodeURIComponent(callId)}/match`, { customer_id: customerId });
    } catch (error) {
      button.disabled = false;
      const existing = error.status === 409 && error.body && error.body.customers;
      if (Array.isArray(existing) && existing.length) {
        status.textContent = t("This number is already a customer's. Is the caller one of them?");
        form.append(numberTaken(callId, existing, body, form, status));
        return;
      }
      status.textContent = t("Not created: {reason}", { reason: error.message });
    }
  }

  function numberTaken(callId, existing, body, form, status) {
    const rows = existing.map((customer) =>
      h(
        "li",
        null,
        h("span", { class: "candidate-name" }, customer.name || t("Customer {id}", { id: customer.id })),
        customer.external_ref ? h("span", { class: "candidate-meta" }, ` · ${t("ref {ref}", { ref: customer.external_ref })}`) : null,
        " ",
        h(
          "button",
          { type: "button", class: "btn btn-small btn-primary", onclick: (event) => chooseCustomer(callId, customer.id, event.currentTarget, status) },
          t("This is the caller"),
        ),
      ),
    );
    return h(
      "div",
      { class: "number-taken" },
      h("ul", { class: "taken-list" }, rows),
      h(
        "button",
        { type: "button", class: "btn btn-small", onclick: () => createCustomer(callId, { ...body, shared_phone: true }, form, status) },
        t("No: create {name}, who shares this number", { name: body.name }),
      ),
    );
  }

  return { chooser, withheldPanel, unknownCallerPanel };
}
