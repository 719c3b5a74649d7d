// The agent's desk around the pop: find any customer (by name, number in any format, e-mail,
// account number or reference), open their profile and timeline outside a call, and today's
// calls, each of which opens.

import { t } from "./i18n.js";
import { channelLabel, gradeText, profile } from "./profile.js";
import { h, money, phoneNumber, shortDate, timeOfDay, titleCase } from "./ui.js";

const SEARCH_DEBOUNCE_MS = 250;
let searchCount = 0;

function matchedByLabel(kind) {
  return (
    { name: t("name"), phone: t("phone number"), email: t("e-mail"), reference: t("account or reference") }[kind] || kind
  );
}

/**
 * A search form with its results. `onOpen(customer)` opens one; with `onLink`, each result
 * also offers `linkLabel` (link a withheld or unknown caller's call to that customer).
 */
export function searchBox({ session, label, onOpen, onLink, linkLabel, inputId }) {
  searchCount += 1;
  const id = inputId || `search-${searchCount}`;
  const input = h("input", {
    id,
    type: "search",
    name: "q",
    autocomplete: "off",
    spellcheck: "false",
    placeholder: t("Name, number, e-mail or account"),
  });
  const status = h("p", { class: "search-status muted", role: "status" });
  const results = h("ul", { class: "search-results", "aria-label": t("Search results") });
  let timer = null;
  let asked = 0;

  async function run() {
    const q = input.value.trim();
    const ticket = ++asked;
    if (q.length < 2) {
      results.replaceChildren();
      status.textContent = q ? t("Type at least 2 characters.") : "";
      return;
    }
    status.textContent = t("Searching…");
    let body;
    try {
      body = await session.request("GET", `/api/customers/search?q=${encodeURIComponent(q)}`);
    } catch (error) {
      if (ticket === asked) status.textContent = t("Search failed: {reason}", { reason: error.message });
      return;
    }
    if (ticket !== asked) return; // an older answer arriving late
    const found = body.customers || [];
    status.textContent = found.length === 0 ? t("Nobody found for “{q}”.", { q }) : found.length === 1 ? t("1 customer found.") : t("{n} customers found.", { n: found.length });
    results.replaceChildren(...found.map(resultRow));
  }

  function resultRow(customer) {
    const phone = (customer.phones || [])[0];
    return h(
      "li",
      { class: "search-result", dataset: { customerId: customer.id } },
      h(
        "div",
        { class: "search-result-text" },
        h("span", { class: "search-result-name" }, customer.name),
        h(
          "span",
          { class: "search-result-meta" },
          [
            customer.external_ref ? t("ref {ref}", { ref: customer.external_ref }) : null,
            customer.email,
            t("matched by {what}", { what: matchedByLabel(customer.matched_by) }),
          ]
            .filter(Boolean)
            .join(" · "),
        ),
        phone ? phoneNumber(phone, { className: "phone search-result-phone" }) : null,
      ),
      h(
        "span",
        { class: "search-result-actions" },
        h("button", { type: "button", class: "btn btn-small", onclick: () => onOpen(customer) }, t("Open")),
        onLink ? h("button", { type: "button", class: "btn btn-small btn-primary", onclick: (e) => onLink(customer, e.currentTarget, status) }, linkLabel) : null,
      ),
    );
  }

  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(run, SEARCH_DEBOUNCE_MS);
  });
  const form = h(
    "form",
    {
      class: "search-form",
      role: "search",
      onsubmit: (event) => {
        event.preventDefault();
        clearTimeout(timer);
        run();
      },
    },
    h("label", { for: id }, label),
    h("div", { class: "search-row" }, input, h("button", { type: "submit", class: "btn" }, t("Search"))),
  );
  return { element: h("div", { class: "search" }, form, status, results), input };
}

// ---------------------------------------------------------------- a customer's timeline

function callLine(item) {
  const wrap = item.wrapup;
  const pending = !wrap && item.state === "ended" && item.answered_at;
  return [
    h(
      "p",
      { class: "timeline-head" },
      h("span", { class: "timeline-kind" }, h("span", { "aria-hidden": "true" }, "☎ "), t("Call")),
      h("span", { class: "timeline-when" }, `${shortDate(item.at)} ${timeOfDay(item.at)}`),
      item.queue ? h("span", null, t("Queue {queue}", { queue: item.queue })) : null,
      item.agent ? h("span", null, t("by {agent}", { agent: item.agent })) : null,
      wrap && wrap.disposition ? h("span", { class: "touch-outcome" }, titleCase(wrap.disposition)) : null,
      pending ? h("span", { class: "today-pending" }, t("wrap-up pending")) : null,
    ),
    wrap && wrap.satisfaction ? h("p", { class: `sat sat-${wrap.satisfaction}` }, gradeText(wrap.satisfaction, wrap.satisfaction_kind)) : null,
    wrap && wrap.notes ? h("p", { class: "touch-notes" }, wrap.notes) : null,
  ];
}

function timelineItem(item) {
  let content;
  if (item.kind === "call") content = callLine(item);
  else if (item.kind === "order")
    content = h(
      "p",
      { class: "timeline-head" },
      h("span", { class: "timeline-kind" }, h("span", { "aria-hidden": "true" }, "▤ "), item.is_return ? t("Return") : t("Order")),
      h("span", { class: "timeline-when" }, shortDate(item.at)),
      h("span", null, `${item.invoice_no} · ${money(item.total)}`),
      h("span", { class: "muted" }, item.item_count === 1 ? t("1 item") : t("{n} items", { n: item.item_count })),
    );
  else
    content = [
      h(
        "p",
        { class: "timeline-head" },
        h("span", { class: "timeline-kind" }, h("span", { "aria-hidden": "true" }, "✎ "), channelLabel(item.channel || "phone")),
        h("span", { class: "timeline-when" }, shortDate(item.at)),
        item.agent ? h("span", null, t("by {agent}", { agent: item.agent })) : null,
        item.disposition ? h("span", { class: "touch-outcome" }, titleCase(item.disposition)) : null,
      ),
      item.satisfaction ? h("p", { class: `sat sat-${item.satisfaction}` }, gradeText(item.satisfaction, item.satisfaction_kind)) : null,
      item.notes ? h("p", { class: "touch-notes" }, item.notes) : null,
    ];
  return h("li", { class: `timeline-item timeline-${item.kind}` }, content);
}

/** The timeline section: the first page now, "Show older" for the next. */
export function timelineSection(session, customerId) {
  const list = h("ol", { class: "timeline-list" });
  const status = h("p", { class: "muted", role: "status" });
  const more = h("button", { type: "button", class: "btn btn-ghost btn-small", hidden: true }, t("Show older"));
  let next = null;
  async function load() {
    more.disabled = true;
    status.textContent = t("Loading…");
    try {
      const query = next ? `?before=${encodeURIComponent(next)}` : "";
      const page = await session.request("GET", `/api/customers/${customerId}/timeline${query}`);
      list.append(...page.items.map(timelineItem));
      next = page.next;
      status.textContent = list.childElementCount ? "" : t("Nothing yet: no calls, orders or notes.");
    } catch (error) {
      status.textContent = t("Timeline not loaded: {reason}", { reason: error.message });
    }
    more.hidden = !next;
    more.disabled = false;
  }
  more.addEventListener("click", load);
  load();
  return h("section", { class: "profile-section timeline", "aria-label": t("Timeline") }, h("h3", null, t("Timeline")), list, status, more);
}

/** A customer opened outside a call: their profile and timeline, in a closable card. */
export async function customerCard(session, customerId, { reason = "search", onClose }) {
  const doc = await session.request("GET", `/api/customers/${encodeURIComponent(customerId)}/profile?reason=${reason}`);
  const nameId = `customer-${customerId}-name`;
  return h(
    "article",
    { class: "card customer-card", "aria-labelledby": nameId, tabindex: "-1", dataset: { customerId } },
    h(
      "header",
      { class: "pop-head" },
      h("span", { class: "call-state call-state-desk" }, h("span", { "aria-hidden": "true" }, "⌕ "), t("Customer (no call)")),
      h("span", { class: "pop-head-actions" }, h("button", { type: "button", class: "btn btn-ghost btn-small", onclick: onClose }, t("Close"))),
    ),
    h("div", { class: "pop-body" }, profile(doc, nameId), timelineSection(session, customerId)),
  );
}

// ---------------------------------------------------------------- today's calls

/** A row of today's list: a button that opens the call. */
export function todayRow(call, stateLabels, onOpen) {
  const caller = call.caller || {};
  const name =
    call.customer_name || (caller.withheld ? t("Withheld") : caller.national || caller.e164 || caller.raw || t("Unknown"));
  const state = call.state || "";
  const [icon, label] = stateLabels[state] || ["•", titleCase(state)];
  const wrapped = call.wrapped_up === true;
  const needsWrapup = !wrapped && call.state === "ended" && call.answered_at;
  return h(
    "li",
    { class: `today-row${needsWrapup ? " today-row-pending" : ""}`, dataset: { callId: call.id } },
    h(
      "button",
      { type: "button", class: "today-open", onclick: () => onOpen(call) },
      h("span", { class: "today-time" }, timeOfDay(call.first_seen_at)),
      h("span", { class: "today-name" }, name),
      h(
        "span",
        { class: `today-state today-state-${state}` },
        h("span", { "aria-hidden": "true" }, `${icon} `),
        label,
        wrapped ? h("span", { class: "today-wrapped" }, ` · ✓ ${t("wrapped up")}`) : null,
        needsWrapup ? h("span", { class: "today-pending" }, ` · ${t("wrap-up pending")}`) : null,
      ),
    ),
  );
}

/** Today's calls newest first by when they came in (the time shown). */
export function sortToday(calls) {
  return [...calls].sort((a, b) => String(b.first_seen_at || "").localeCompare(String(a.first_seen_at || "")));
}
