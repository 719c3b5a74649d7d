// The customer's profile as the pop and the desk show it: identity and badges, money figures
// (over-limit and overdue flagged), next needs (the marketing warning said once), recent
// orders and touch points. Read in two seconds: the name, what they are worth, what to watch.

import { locale, t } from "./i18n.js";
import { h, money, parseTime, pick, productName, shortDate, timeOfDay, titleCase } from "./ui.js";

/** The grades, each with its name and what it means: [[1, name, meaning], ...]. */
export function satisfactionScale() {
  return [
    [1, t("Very disappointed"), t("Angry or upset; may leave us")],
    [2, t("Disappointed"), t("The problem is not solved, or the call went badly")],
    [3, t("Neutral"), t("Neither pleased nor unhappy")],
    [4, t("Satisfied"), t("Got what they called for")],
    [5, t("Very satisfied"), t("Delighted, and said so")],
  ];
}

export function satisfactionLabel(score) {
  const found = satisfactionScale().find(([value]) => value === Number(score));
  return found ? found[1] : null;
}

function tierLabel(tier) {
  return { high: t("High value"), medium: t("Medium value"), low: t("Low value") }[tier] || titleCase(tier);
}

function segmentLabel(segment) {
  const names = {
    loyal: t("Loyal"),
    discount: t("Discount"),
    impulsive: t("Impulsive"),
    need_based: t("Need-based"),
    "need-based": t("Need-based"),
    wandering: t("Wandering"),
  };
  return names[segment] || titleCase(segment);
}

export function customerTypeLabel(type) {
  const names = {
    consumer: t("Consumer"),
    industrial: t("Industrial"),
    institutional: t("Institutional"),
    government: t("Government"),
  };
  return names[type] || titleCase(type);
}

export function channelLabel(channel) {
  return { phone: t("Phone"), email: t("Email"), visit: t("Visit"), chat: t("Chat") }[channel] || titleCase(channel);
}

export function satisfactionKindLabel(kind) {
  if (kind === "caller") return t("caller's own rating");
  if (kind === "agent") return t("agent's impression");
  return null;
}

export function isMasked(account) {
  return account.masked === true || account.balance === undefined || account.balance === null || account.balance === "hidden";
}

function stageLabel(stage) {
  return stage === "dissolution" ? t("At risk (dissolution)") : t("Stage: {stage}", { stage: titleCase(stage) });
}

/** Reasons quote catalogue names in capitals; write those as words too. */
function readable(text) {
  return String(text).replace(/[A-Z][A-Z0-9 ,.'&/()-]*[A-Z0-9)]/g, (run) =>
    run.length >= 6 && /[A-Z]{3}/.test(run) ? productName(run) : run,
  );
}

function badge(kind, icon, text) {
  return h("li", { class: `badge badge-${kind}` }, icon ? h("span", { "aria-hidden": "true" }, `${icon} `) : null, text);
}

function figure(label, value, kind, sub) {
  return h(
    "div",
    { class: `figure figure-${kind}` },
    h("dt", null, label),
    h("dd", null, value, sub ? h("small", null, sub) : null),
  );
}

function loyaltyTierLabel(tier) {
  return { gold: t("Gold"), silver: t("Silver"), bronze: t("Bronze") }[String(tier).toLowerCase()] || tier;
}

/**
 * The loyalty badge: a programme membership as its system of record gives it ("Tea Club · Gold
 * · 1,250 points · member since 1 Mar 2024 · from club"), or the frequency programme screenpop
 * computed from purchases, said to be computed so no agent takes it for a membership.
 */
function loyaltyBadge(loyalty) {
  if (!loyalty || !loyalty.programme) return null;
  const computed = Boolean(loyalty.computed);
  const hasPoints = loyalty.points !== null && loyalty.points !== undefined;
  const parts = [
    computed ? t("Frequency programme (computed)") : loyalty.programme,
    loyalty.tier ? loyaltyTierLabel(loyalty.tier) : null,
    hasPoints ? t("{n} points", { n: Number(loyalty.points).toLocaleString(locale()) }) : null,
    !computed && loyalty.since ? t("member since {date}", { date: shortDate(loyalty.since) }) : null,
  ].filter(Boolean);
  const tier = String(loyalty.tier || "none").toLowerCase().replace(/[^a-z0-9-]/g, "");
  const from = provenance(loyalty.source);
  return h(
    "li",
    {
      class: `badge badge-loyalty loyalty-${tier}${computed ? " loyalty-computed" : ""}`,
      title: computed ? t("Computed from the last 12 months' purchases, not a programme the customer joined.") : "",
    },
    h("span", { "aria-hidden": "true" }, "♥ "),
    parts.join(" · "),
    from ? [" · ", from] : null,
  );
}

/** Where a part of the pop came from and how fresh it is: "from billing, 10:42". */
export function provenance(source) {
  if (!source || !source.name) return null;
  const at = parseTime(source.as_of);
  const today = at && at.toDateString() === new Date().toDateString();
  const when = at ? (today ? timeOfDay(at) : `${shortDate(at)} ${timeOfDay(at)}`) : "";
  const text = when ? t("from {source}, {time}", { source: source.name, time: when }) : t("from {source}", { source: source.name });
  return h("span", { class: "provenance", title: source.as_of || "" }, text);
}

/** The balance, flagged when it is over the credit limit or has an overdue part. */
function balanceFigure(acc, currency) {
  if (!acc) return figure(t("Balance"), "—", "balance");
  if (isMasked(acc)) return figure(t("Balance"), t("hidden"), "masked");
  const balance = Number(acc.balance);
  const limit = acc.credit_limit === undefined || acc.credit_limit === null ? null : Number(acc.credit_limit);
  const overdue = Number(pick(acc, "overdue") || 0);
  const flags = [];
  if (limit !== null && limit > 0 && balance > limit) {
    flags.push(t("Over limit by {amount}", { amount: money(balance - limit, currency) }));
  }
  if (overdue > 0) flags.push(t("{amount} overdue", { amount: money(overdue, currency) }));
  const kind = flags.length ? "balance figure-alert" : "balance";
  const flag = flags.length ? h("span", { class: "figure-flag" }, h("span", { "aria-hidden": "true" }, "⚠ "), flags.join(" · ")) : null;
  const from = provenance(acc.source);
  return figure(t("Balance"), money(acc.balance, currency), kind, flag || from ? [flag, from] : null);
}

/** The profile block; `nameId` labels the card, `nameTag` is the heading level. */
export function profile(doc, nameId, { nameTag = "h2" } = {}) {
  const c = doc.customer;
  const ins = doc.insights || {};
  const acc = doc.account;
  const currency = (acc && acc.currency) || "GBP";
  const consent = pick(c, "marketing_consent", "marketing_permission");
  const since = pick(c, "since", "customer_since", "first_order_at", "created_at");
  const meta = [
    customerTypeLabel(pick(c, "customer_type", "type") || "consumer"),
    since ? t("customer since {date}", { date: shortDate(since) }) : null,
    pick(c, "language") ? t("language {code}", { code: String(c.language).toUpperCase() }) : null,
    pick(c, "country"),
    pick(c, "external_ref") ? t("ref {ref}", { ref: c.external_ref }) : null,
  ].filter(Boolean);
  const tier = pick(ins, "value_tier");
  const badges = [
    tier ? badge(`tier tier-${tier}`, tier === "high" ? "★" : tier === "medium" ? "◆" : "○", tierLabel(tier)) : null,
    ins.potential ? badge("potential", "▲", t("Growing potential")) : null,
    loyaltyBadge(doc.loyalty),
    pick(ins, "segment") ? badge("segment", null, segmentLabel(ins.segment)) : null,
    pick(ins, "stage") ? badge(`stage stage-${ins.stage}`, ins.stage === "dissolution" ? "⚠" : null, stageLabel(ins.stage)) : null,
    badge(consent ? "consent-yes" : "consent-no", consent ? "✓" : "✕", consent ? t("Marketing permission") : t("No marketing permission")),
  ];
  const clv = pick(ins, "clv_historic", "lifetime_value", "clv");
  const forecast = pick(ins, "clv_forecast");
  const treatment = pick(ins, "treatment", "suggested_treatment") || pick(doc, "treatment");
  const caller = (doc.call && doc.call.caller) || {};
  const accountRef = doc.match && doc.match.matched_by === "account_ref";
  return h(
    "div",
    { class: "profile" },
    h(
      "div",
      { class: "identity" },
      h(nameTag, { id: nameId, class: "customer-name" }, c.name),
      h("p", { class: "identity-meta" }, meta.join(" · "), c.source ? [" · ", provenance(c.source)] : null),
      accountRef
        ? h(
            "p",
            { class: "note" },
            caller.withheld
              ? t("Number withheld: identified by the account number entered in the IVR ({ref}).", { ref: doc.match.account_ref })
              : t("Identified by the account number entered in the IVR ({ref}).", { ref: doc.match.account_ref }),
          )
        : null,
      h("ul", { class: "badges", "aria-label": t("Customer at a glance") }, badges),
    ),
    treatment
      ? h("p", { class: "treatment" }, h("span", { class: "treatment-label" }, t("Suggested treatment")), h("span", null, treatment))
      : null,
    h(
      "dl",
      { class: "figures" },
      balanceFigure(acc, currency),
      figure(t("Credit limit"), acc ? (isMasked(acc) || acc.credit_limit === undefined ? t("hidden") : money(acc.credit_limit, currency)) : "—", "credit"),
      figure(
        t("Lifetime value"),
        clv !== undefined ? money(clv, currency) : "—",
        "clv",
        forecast !== undefined ? t("forecast {amount}", { amount: money(forecast, currency) }) : null,
      ),
      pick(ins, "churn_risk") !== undefined ? figure(t("Churn risk"), `${Math.round(Number(ins.churn_risk) * 100)}%`, "churn") : null,
    ),
    h("div", { class: "profile-columns" }, nextNeeds(doc, consent), orders(doc, currency), touchPoints(doc), extras(doc)),
  );
}

/** Parts a system of record sent that the pop has no slot for, shown as given, with their source. */
function extras(doc) {
  return Object.entries(doc.extras || {}).map(([name, part]) => {
    const rows = (part.rows || []).filter((row) => row && typeof row === "object").slice(0, 5);
    const columns = [...new Set(rows.flatMap((row) => Object.keys(row)))].slice(0, 6);
    const cell = (value) => (value === null || value === undefined ? "—" : typeof value === "object" ? JSON.stringify(value) : String(value));
    const body =
      rows.length === 1
        ? h("dl", { class: "extra-fields" }, columns.map((col) => [h("dt", null, titleCase(col)), h("dd", null, cell(rows[0][col]))]))
        : h(
            "table",
            { class: "extra-rows" },
            h("thead", null, h("tr", null, columns.map((col) => h("th", { scope: "col" }, titleCase(col))))),
            h("tbody", null, rows.map((row) => h("tr", null, columns.map((col) => h("td", null, cell(row[col])))))),
          );
    return h(
      "section",
      { class: "profile-section extra", "data-part": name },
      h("h3", null, titleCase(name), " ", provenance(part.source)),
      rows.length ? body : h("p", { class: "muted" }, t("Nothing.")),
    );
  });
}

function nextNeeds(doc, consent) {
  // The list is best first overall; show the best few of each kind so cross-sells are not
  // pushed off the card by a long run of reorders.
  const counts = { reorder: 0, cross_sell: 0 };
  const needs = (doc.next_needs || []).filter((need) => {
    const kind = need.kind === "cross_sell" ? "cross_sell" : "reorder";
    counts[kind] += 1;
    return counts[kind] <= 4;
  });
  const noConsent = consent === false;
  const items = needs.map((need) => {
    // Without permission nothing may be offered: said once above the list, not on each line.
    const mayOffer = noConsent || need.may_offer !== false;
    return h(
      "li",
      { class: `need need-${need.kind}${noConsent || !mayOffer ? " need-no-offer" : ""}` },
      h("span", { class: `need-kind need-kind-${need.kind}` }, need.kind === "cross_sell" ? t("Cross-sell") : t("Reorder")),
      h("span", { class: "need-name" }, productName(need.name || need.sku)),
      h("span", { class: "need-reason" }, readable(need.reason || "")),
      mayOffer ? null : h("span", { class: "need-warning" }, t("don't offer")),
    );
  });
  return h(
    "section",
    { class: "profile-section needs" },
    h("h3", null, t("Next needs")),
    noConsent && items.length
      ? h("p", { class: "need-warning need-warning-once" }, h("span", { "aria-hidden": "true" }, "⚠ "), t("No marketing permission: don't offer these."))
      : null,
    items.length ? h("ol", { class: "need-list" }, items) : h("p", { class: "muted" }, t("No suggestions yet.")),
  );
}

function orders(doc, currency) {
  const list = (doc.purchases || doc.orders || []).slice(0, 5);
  const items = list.map((order) => {
    const lines = order.items || order.lines || [];
    const count = pick(order, "item_count") ?? lines.length;
    const isReturn = order.is_return === true;
    return h(
      "li",
      { class: `order${isReturn ? " order-return" : ""}` },
      h(
        "details",
        null,
        h(
          "summary",
          null,
          h("span", { class: "order-date" }, shortDate(pick(order, "ordered_at", "date"))),
          h("span", { class: "order-total" }, money(pick(order, "total"), currency), isReturn ? h("span", { class: "return-tag" }, ` ↩ ${t("Return")}`) : null),
          h("span", { class: "order-count" }, count === 1 ? t("1 item") : t("{n} items", { n: count })),
        ),
        h(
          "ul",
          { class: "order-lines" },
          lines.slice(0, 12).map((line) => h("li", null, `${pick(line, "quantity") ?? ""} × ${productName(pick(line, "description", "name", "sku") || "")}`)),
          count > 12 ? h("li", { class: "muted" }, t("… and {n} more", { n: count - 12 })) : null,
        ),
      ),
    );
  });
  return h(
    "section",
    { class: "profile-section orders" },
    h("h3", null, t("Recent orders"), list.length && list[0].source ? [" ", provenance(list[0].source)] : null),
    items.length ? h("ul", { class: "order-list" }, items) : h("p", { class: "muted" }, t("No orders.")),
  );
}

/** A grade as text: "4/5 Satisfied (caller's own rating)". */
export function gradeText(grade, kind) {
  const whose = satisfactionKindLabel(kind);
  return `${grade}/5 ${satisfactionLabel(grade) || ""}${whose ? ` (${whose})` : ""}`;
}

function touchPoints(doc) {
  const list = (doc.interactions || []).slice(0, 5);
  const items = list.map((touch) => {
    const grade = pick(touch, "satisfaction");
    const outcome = pick(touch, "disposition", "outcome");
    return h(
      "li",
      { class: "touch" },
      h(
        "p",
        { class: "touch-head" },
        h("span", { class: "touch-when" }, `${shortDate(pick(touch, "created_at", "at"))} · ${channelLabel(pick(touch, "channel") || "phone")}`),
        outcome ? h("span", { class: "touch-outcome" }, titleCase(outcome)) : null,
        grade ? h("span", { class: `sat sat-${grade}` }, gradeText(grade, touch.satisfaction_kind)) : null,
      ),
      pick(touch, "notes") ? h("p", { class: "touch-notes" }, touch.notes) : null,
      pick(touch, "agent") ? h("p", { class: "touch-agent muted" }, t("by {agent}", { agent: touch.agent })) : null,
    );
  });
  return h(
    "section",
    { class: "profile-section touches" },
    h("h3", null, t("Recent touch points")),
    items.length ? h("ul", { class: "touch-list" }, items) : h("p", { class: "muted" }, t("No touch points yet.")),
  );
}
