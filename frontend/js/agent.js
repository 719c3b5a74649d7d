// The agent screen: sign in, status, the pop while the phone rings, wrap-up, today's calls.
// Messages follow DESIGN.md ("Agents and supervisors"): pop, pop.update, call.state.

import { LiveSocket, socketUrl } from "./live.js";
import { Session, wireSignIn } from "./session.js";
import { ago, h, money, pick, productName, shortDate, timeOfDay, titleCase } from "./ui.js";

const session = new Session("screenpop.agent");
const $ = (id) => document.getElementById(id);

const STATE_LABELS = {
  queued: ["⋯", "In queue"],
  ringing: ["☎", "Ringing"],
  answered: ["●", "In call"],
  held: ["‖", "On hold"],
  transferred: ["↷", "Transferred away"],
  ended: ["■", "Call ended"],
  abandoned: ["✕", "Caller hung up"],
  withdrawn: ["↷", "Answered by another agent"],
  missed: ["↷", "Offer ended: not answered here"],
};
const LIVE_STATES = new Set(["queued", "ringing", "answered", "held"]);
const WRAPUP_STATES = new Set(["answered", "held", "ended"]);
const SATISFACTION = [
  [1, "Very disappointed"],
  [2, "Disappointed"],
  [3, "Neutral"],
  [4, "Satisfied"],
  [5, "Very satisfied"],
];
const DISPOSITIONS = [
  ["resolved", "Resolved"],
  ["sale", "Sale made"],
  ["follow_up", "Follow-up needed"],
  ["complaint", "Complaint"],
  ["information", "Information given"],
  ["wrong_number", "Wrong number"],
];
const OUTCOMES = [
  ["accepted", "Accepted"],
  ["declined", "Declined"],
  ["not_offered", "Not offered"],
];
const CUSTOMER_TYPES = ["consumer", "industrial", "institutional", "government"];
const WITHDRAWN_LINGER_MS = 30000;

/** call id -> {doc, version, state, withdrawn, seenVersion, card, parts, wrapupDone} */
const pops = new Map();
let live = null;
let connectedOnce = false;

// ---------------------------------------------------------------- sign-in and session

function showSignedOut(message) {
  if (live) live.stop();
  live = null;
  for (const entry of pops.values()) entry.card.remove();
  pops.clear();
  $("workspace").hidden = true;
  $("session-tools").hidden = true;
  $("offline-banner").hidden = true;
  $("sign-in").hidden = false;
  $("sign-in-error").textContent = message || "";
  $("username").focus();
}

function showSignedIn(user) {
  $("sign-in").hidden = true;
  $("workspace").hidden = false;
  $("session-tools").hidden = false;
  $("who").textContent = user.username;
  updateNotifyButton();
  updateIdle();
  loadStatus();
  loadToday();
  connect();
}

function askNotificationPermission() {
  // Browsers only prompt inside a user gesture (the sign-in click or the alerts button).
  if ("Notification" in window && Notification.permission === "default") {
    Notification.requestPermission().then(updateNotifyButton, () => {});
  }
}

function updateNotifyButton() {
  const button = $("notify-button");
  button.hidden = !("Notification" in window) || Notification.permission !== "default";
}

// ---------------------------------------------------------------- status

// Opening the agent screen makes a logged-out agent available (the server does that on
// connect); an agent who chose "away" stays away across reconnects because we say so again.
const STATUS_KEY = "screenpop.agent.status";

function chosenStatus() {
  return sessionStorage.getItem(STATUS_KEY) === "away" ? "away" : "available";
}

function loadStatus() {
  setStatusRadio(chosenStatus());
}

function setStatusRadio(state) {
  $("status-available").checked = state !== "away";
  $("status-away").checked = state === "away";
}

async function postStatus(state) {
  await session.request("POST", "/api/agents/me/status", { state });
}

async function changeStatus(event) {
  const state = event.target.value;
  const before = chosenStatus();
  try {
    await postStatus(state);
    sessionStorage.setItem(STATUS_KEY, state);
    announce(state === "away" ? "You are away: no calls will be offered." : "You are available.");
  } catch (error) {
    setStatusRadio(before);
    announce(`Status not changed: ${error.message}`);
    $("status-switch").setAttribute("title", error.message);
  }
}

// ---------------------------------------------------------------- connection

function connect() {
  live = new LiveSocket({
    url: () => socketUrl("/ws/agent", { token: session.token }),
    onMessage: handleMessage,
    onStatus: showConnection,
  });
  live.start();
}

function showConnection({ state, retryInMs }) {
  const badge = $("connection");
  const banner = $("offline-banner");
  badge.className = `conn conn-${state}`;
  if (state === "open") {
    badge.textContent = "● Live";
    banner.hidden = true;
    if (connectedOnce) {
      // The server replays live pops on connect; the list catches up with calls that ended.
      loadToday();
    }
    connectedOnce = true;
    if (chosenStatus() === "away") postStatus("away").catch(() => {});
  } else if (state === "connecting") {
    badge.textContent = "Connecting…";
  } else if (state === "unauthorised") {
    session.signOut();
    showSignedOut("Your session has expired. Please sign in again.");
  } else {
    const seconds = retryInMs ? Math.max(1, Math.round(retryInMs / 1000)) : null;
    badge.textContent = "○ Offline";
    banner.hidden = false;
    banner.textContent =
      (state === "offline" ? "You are offline: this computer has no network. " : "You are offline: the pop server cannot be reached. ") +
      "Pops cannot reach you until the connection is back" +
      (seconds ? `; trying again in ${seconds} s.` : ".");
  }
}

function handleMessage(message) {
  switch (message.type) {
    case "pop":
      receivePop(message);
      break;
    case "pop.update":
      receivePopUpdate(message);
      break;
    case "call.state":
      receiveCallState(message);
      break;
    default:
      break;
  }
}

function callIdOf(message) {
  return pick(message, "call_id") || (message.call && message.call.id);
}

function receivePop(message) {
  const id = callIdOf(message);
  if (!id) return;
  const version = Number(message.version || 0);
  let entry = pops.get(id);
  const isNew = !entry;
  if (entry && version < entry.version) return; // an older copy (e.g. a second tab's replay)
  if (!entry) {
    compactFinishedCards();
    entry = { version, state: null, withdrawn: false, seenVersion: 0, wrapupDone: false, compact: false };
    pops.set(id, entry);
    entry.card = buildCard(id);
    $("pops").prepend(entry.card);
  }
  entry.doc = message;
  entry.version = version;
  entry.state = (message.call && message.call.state) || entry.state || "ringing";
  entry.compact = false;
  if (entry.withdrawn) {
    // Offered to us again (a transfer back, a re-offer): the card is live once more.
    entry.withdrawn = false;
    clearTimeout(entry.removeTimer);
  }
  renderCard(id, entry);
  ack(id, version);
  if (isNew) {
    announce(announcement(message));
    notify(message);
  }
  markSeenIfVisible();
  updateIdle();
}

function receivePopUpdate(message) {
  const id = callIdOf(message);
  const entry = id && pops.get(id);
  // An update can overtake the pop it completes (the server drops the older pop): it has the
  // pop's whole shape, so it pops.
  if (!entry) {
    if (id) receivePop({ ...message, type: "pop" });
    return;
  }
  const version = Number(message.version || entry.version);
  if (version < entry.version) return;
  for (const [key, value] of Object.entries(message)) {
    if (key === "type" || key === "version" || key === "call_id") continue;
    if (key === "call" && value && typeof value === "object") entry.doc.call = { ...entry.doc.call, ...value };
    else entry.doc[key] = value;
  }
  entry.version = version;
  if (message.call && message.call.state) entry.state = message.call.state;
  renderCard(id, entry);
  ack(id, version);
  markSeenIfVisible();
}

function receiveCallState(message) {
  const id = callIdOf(message);
  const entry = id && pops.get(id);
  if (!entry) return;
  if (message.withdrawn === true || message.state === "withdrawn") {
    // This agent no longer has the call: say why, keep the card visible for a while.
    entry.withdrawn = true;
    entry.state = withdrawnState(message.state);
    entry.reason = message.reason || null;
    const [, label] = STATE_LABELS[entry.state];
    announce(`Call withdrawn: ${displayName(entry.doc)}. ${label}.`);
    clearTimeout(entry.removeTimer);
    entry.removeTimer = setTimeout(() => removePop(id), WITHDRAWN_LINGER_MS);
  } else if (message.state) {
    entry.state = message.state;
    if (message.state === "abandoned") announce(`${displayName(entry.doc)} hung up.`);
  }
  if (message.version !== undefined && entry.doc.call) entry.doc.call.state = entry.state;
  renderHead(id, entry);
  renderWrapup(id, entry);
  if (["ended", "abandoned"].includes(entry.state)) loadToday();
}

function withdrawnState(state) {
  if (state === "abandoned") return "abandoned";
  if (state === "ended") return "ended";
  if (state === "transferred") return "transferred";
  if (state === "queued" || state === "ringing") return "missed";
  return "withdrawn"; // answered or held by someone else
}

function ack(callId, version) {
  if (live) live.send({ type: "ack", call_id: callId, version });
}

function markSeenIfVisible() {
  if (document.visibilityState !== "visible" || !document.hasFocus()) return;
  for (const [id, entry] of pops) {
    if (entry.seenVersion < entry.version && !entry.withdrawn) {
      entry.seenVersion = entry.version;
      if (live) live.send({ type: "seen", call_id: id, version: entry.version });
    }
  }
}

// A new call pushes finished cards down and folds their profiles away (their wrap-up stays
// open), so the ringing pop is what the eye lands on.
function compactFinishedCards() {
  for (const [id, entry] of pops) {
    if (!LIVE_STATES.has(entry.state) && !entry.compact) {
      entry.compact = true;
      renderHead(id, entry);
    }
  }
}

function removePop(id) {
  const entry = pops.get(id);
  if (!entry) return;
  clearTimeout(entry.removeTimer);
  entry.card.remove();
  pops.delete(id);
  updateIdle();
}

function updateIdle() {
  $("idle").hidden = pops.size > 0;
}

// ---------------------------------------------------------------- announcements and alerts

function displayName(doc) {
  if (doc.customer && doc.customer.name) return doc.customer.name;
  const caller = (doc.call && doc.call.caller) || {};
  if (caller.withheld) return "a withheld number";
  return caller.e164 || caller.raw || "an unknown caller";
}

function announcement(doc) {
  const kind = doc.match && doc.match.kind;
  const tier = doc.insights && doc.insights.value_tier;
  if (doc.customer && doc.customer.name) {
    return `Call from ${doc.customer.name}${tier ? `, ${tier} value` : ""}`;
  }
  if (kind === "multiple") {
    const count = (doc.match.candidates || []).length;
    return `Call from ${displayName(doc)}, ${count} possible customers: choose one`;
  }
  if (kind === "withheld") return "Call from a withheld number";
  return `Call from ${displayName(doc)}, not a known customer`;
}

function announce(text) {
  const region = $("announcer");
  // Clearing first makes screen readers announce the same sentence twice in a row.
  region.textContent = "";
  setTimeout(() => {
    region.textContent = text;
  }, 50);
}

function notify(doc) {
  if (!document.hidden || !("Notification" in window) || Notification.permission !== "granted") return;
  const balance = doc.account && !isMasked(doc.account) ? `Balance ${money(doc.account.balance, doc.account.currency)}` : "";
  const queue = doc.call && doc.call.queue ? `Queue ${doc.call.queue}` : "";
  try {
    const note = new Notification(announcement(doc), {
      body: [queue, balance].filter(Boolean).join(" · "),
      tag: `screenpop-${callIdOf(doc)}`,
    });
    note.onclick = () => {
      window.focus();
      note.close();
    };
  } catch {
    // Some browsers only allow notifications from a service worker; the page still shows the pop.
  }
}

// ---------------------------------------------------------------- the pop card

function buildCard(id) {
  const safe = id.replace(/[^A-Za-z0-9_-]/g, "_");
  const head = h("header", { class: "pop-head" });
  const body = h("div", { class: "pop-body" });
  const wrapup = h("div", { class: "pop-wrapup" });
  const card = h(
    "article",
    { class: "card pop", "aria-labelledby": `pop-${safe}-name`, dataset: { callId: id }, tabindex: "-1" },
    head,
    body,
    wrapup,
  );
  card.parts = { head, body, wrapup, safe };
  return card;
}

function renderCard(id, entry) {
  renderHead(id, entry);
  renderBody(id, entry);
  renderWrapup(id, entry);
}

function renderHead(id, entry) {
  const { head } = entry.card.parts;
  const doc = entry.doc;
  const call = doc.call || {};
  const caller = call.caller || {};
  const state = entry.state || "ringing";
  const [icon, label] = STATE_LABELS[state] || ["•", titleCase(state)];
  entry.card.className = `card pop pop-state-${state}${entry.withdrawn ? " pop-withdrawn" : ""}${entry.compact ? " pop-compact" : ""}`;
  const number = caller.withheld ? "Number withheld" : caller.e164 || caller.raw || "Unknown number";
  const dismissible = !LIVE_STATES.has(state) && (state !== "ended" || entry.wrapupDone || !canWrapUp(entry));
  head.replaceChildren(
    ...[
      h("span", { class: `call-state call-state-${state}`, role: "status" }, h("span", { "aria-hidden": "true" }, icon), ` ${label}`),
    h("span", { class: "pop-head-detail" }, call.queue ? `Queue ${call.queue}` : null),
    h("span", { class: "pop-head-detail pop-number" }, number),
      h(
        "span",
        { class: "pop-head-actions" },
        LIVE_STATES.has(state)
          ? null
          : h(
              "button",
              {
                type: "button",
                class: "btn btn-ghost btn-small",
                "aria-expanded": entry.compact ? "false" : "true",
                onclick: () => {
                  entry.compact = !entry.compact;
                  renderHead(id, entry);
                },
              },
              entry.compact ? "Show profile" : "Fold profile",
            ),
        dismissible
          ? h("button", { type: "button", class: "btn btn-ghost btn-small", onclick: () => removePop(id) }, "Dismiss")
          : null,
      ),
    ].filter(Boolean),
  );
}

function renderBody(id, entry) {
  const { body, safe } = entry.card.parts;
  const doc = entry.doc;
  const match = doc.match || {};
  const parts = [];
  const transfer = doc.transfer;
  if (transfer && typeof transfer === "object") {
    const from = pick(transfer, "from", "from_agent", "agent");
    const notes = pick(transfer, "notes");
    parts.push(
      h(
        "p",
        { class: "note transfer-note" },
        `↷ Transferred${from ? ` from ${from}` : ""}`,
        notes ? h("span", { class: "transfer-notes" }, `: “${notes}”`) : null,
      ),
    );
  }
  if (doc.complete === false) parts.push(h("p", { class: "muted loading-note" }, "Loading the rest of the profile…"));
  if (match.kind === "multiple") parts.push(chooser(id, doc, safe));
  if (doc.customer) {
    parts.push(profile(doc, safe));
  } else if (match.kind === "withheld") {
    parts.push(withheldPanel(doc, safe));
  } else if (match.kind !== "multiple") {
    parts.push(unknownCallerPanel(id, doc, safe));
  }
  body.replaceChildren(...parts);
}

function isMasked(account) {
  return account.masked === true || account.balance === undefined || account.balance === null || account.balance === "hidden";
}

function profile(doc, safe) {
  const c = doc.customer;
  const ins = doc.insights || {};
  const acc = doc.account;
  const currency = (acc && acc.currency) || "GBP";
  const consent = pick(c, "marketing_consent", "marketing_permission");
  const since = pick(c, "since", "customer_since", "first_order_at", "created_at");
  const meta = [
    titleCase(pick(c, "customer_type", "type") || "consumer"),
    since ? `customer since ${shortDate(since)}` : null,
    pick(c, "language") ? `language ${String(c.language).toUpperCase()}` : null,
    pick(c, "country"),
    pick(c, "external_ref") ? `ref ${c.external_ref}` : null,
  ].filter(Boolean);
  const tier = pick(ins, "value_tier");
  const badges = [
    tier ? badge(`tier tier-${tier}`, tier === "high" ? "★" : tier === "medium" ? "◆" : "○", `${titleCase(tier)} value`) : null,
    ins.potential ? badge("potential", "▲", "Growing potential") : null,
    pick(ins, "segment") ? badge("segment", null, titleCase(ins.segment)) : null,
    pick(ins, "stage") ? badge(`stage stage-${ins.stage}`, ins.stage === "dissolution" ? "⚠" : null, stageLabel(ins.stage)) : null,
    badge(consent ? "consent-yes" : "consent-no", consent ? "✓" : "✕", consent ? "Marketing permission" : "No marketing permission"),
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
      h("h2", { id: `pop-${safe}-name`, class: "customer-name" }, c.name),
      h("p", { class: "identity-meta" }, meta.join(" · ")),
      accountRef
        ? h(
            "p",
            { class: "note" },
            `${caller.withheld ? "Number withheld: identified" : "Identified"} by the account number entered in the IVR (${doc.match.account_ref}).`,
          )
        : null,
      h("ul", { class: "badges", "aria-label": "Customer at a glance" }, badges),
    ),
    treatment
      ? h("p", { class: "treatment" }, h("span", { class: "treatment-label" }, "Suggested treatment"), h("span", null, treatment))
      : null,
    h(
      "dl",
      { class: "figures" },
      figure("Balance", acc ? (isMasked(acc) ? "hidden" : money(acc.balance, currency)) : "—", acc && isMasked(acc) ? "masked" : "balance"),
      figure("Credit limit", acc ? (isMasked(acc) || acc.credit_limit === undefined ? "hidden" : money(acc.credit_limit, currency)) : "—", "credit"),
      figure("Lifetime value", clv !== undefined ? money(clv, currency) : "—", "clv", forecast !== undefined ? `forecast ${money(forecast, currency)}` : null),
      pick(ins, "churn_risk") !== undefined
        ? figure("Churn risk", `${Math.round(Number(ins.churn_risk) * 100)}%`, "churn")
        : null,
    ),
    h("div", { class: "profile-columns" }, nextNeeds(doc, consent), orders(doc, currency), touchPoints(doc)),
  );
}

function stageLabel(stage) {
  return stage === "dissolution" ? "At risk (dissolution)" : `Stage: ${titleCase(stage)}`;
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

function nextNeeds(doc, consent) {
  // The list is best first overall; show the best few of each kind so cross-sells are not
  // pushed off the card by a long run of reorders.
  const counts = { reorder: 0, cross_sell: 0 };
  const needs = (doc.next_needs || []).filter((need) => {
    const kind = need.kind === "cross_sell" ? "cross_sell" : "reorder";
    counts[kind] += 1;
    return counts[kind] <= 4;
  });
  const items = needs.map((need) => {
    const mayOffer = need.may_offer !== false && consent !== false;
    return h(
      "li",
      { class: `need need-${need.kind}${mayOffer ? "" : " need-no-offer"}` },
      h("span", { class: `need-kind need-kind-${need.kind}` }, need.kind === "cross_sell" ? "Cross-sell" : "Reorder"),
      h("span", { class: "need-name" }, productName(need.name || need.sku)),
      h("span", { class: "need-reason" }, readable(need.reason || "")),
      mayOffer ? null : h("span", { class: "need-warning" }, "⚠ no marketing permission — don't offer"),
    );
  });
  return h(
    "section",
    { class: "profile-section needs" },
    h("h3", null, "Next needs"),
    items.length ? h("ol", { class: "need-list" }, items) : h("p", { class: "muted" }, "No suggestions yet."),
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
          h(
            "span",
            { class: "order-total" },
            money(pick(order, "total"), currency),
            isReturn ? h("span", { class: "return-tag" }, " ↩ Return") : null,
          ),
          h("span", { class: "order-count" }, `${count} item${count === 1 ? "" : "s"}`),
        ),
        h(
          "ul",
          { class: "order-lines" },
          lines.slice(0, 12).map((line) =>
            h("li", null, `${pick(line, "quantity") ?? ""} × ${productName(pick(line, "description", "name", "sku") || "")}`),
          ),
          count > 12 ? h("li", { class: "muted" }, `… and ${count - 12} more`) : null,
        ),
      ),
    );
  });
  return h(
    "section",
    { class: "profile-section orders" },
    h("h3", null, "Recent orders"),
    items.length ? h("ul", { class: "order-list" }, items) : h("p", { class: "muted" }, "No orders."),
  );
}

function satisfactionLabel(score) {
  const found = SATISFACTION.find(([value]) => value === Number(score));
  return found ? found[1] : null;
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
        h("span", { class: "touch-when" }, `${shortDate(pick(touch, "created_at", "at"))} · ${titleCase(pick(touch, "channel") || "phone")}`),
        outcome ? h("span", { class: "touch-outcome" }, titleCase(outcome)) : null,
        grade ? h("span", { class: `sat sat-${grade}` }, `${grade}/5 ${satisfactionLabel(grade) || ""}`) : null,
      ),
      pick(touch, "notes") ? h("p", { class: "touch-notes" }, touch.notes) : null,
      pick(touch, "agent") ? h("p", { class: "touch-agent muted" }, `by ${touch.agent}`) : null,
    );
  });
  return h(
    "section",
    { class: "profile-section touches" },
    h("h3", null, "Recent touch points"),
    items.length ? h("ul", { class: "touch-list" }, items) : h("p", { class: "muted" }, "No touch points yet."),
  );
}

function chooser(id, doc, safe) {
  const candidates = (doc.match && doc.match.candidates) || [];
  const chosen = doc.customer ? pick(doc.customer, "id", "customer_id") : null;
  const status = h("p", { class: "form-error", role: "alert" });
  const buttons = candidates.map((cand) => {
    const cid = pick(cand, "customer_id", "id");
    const tier = pick(cand, "value_tier");
    const lastOrder = pick(cand, "last_order_at");
    const lastContact = pick(cand, "last_contact_at");
    const details = [
      titleCase(pick(cand, "customer_type") || ""),
      tier ? `${titleCase(tier)} value` : null,
      lastOrder ? `last order ${ago(lastOrder)}` : "no orders",
      lastContact ? `last call ${ago(lastContact)}` : null,
      pick(cand, "external_ref") ? `ref ${cand.external_ref}` : null,
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
          onclick: (event) => chooseCustomer(id, cid, event.currentTarget, status),
        },
        h("span", { class: "candidate-name" }, cand.name || `Customer ${cid}`),
        cand.chosen_before ? h("span", { class: "candidate-chosen-before" }, "✓ chosen before for this number") : null,
        h("span", { class: "candidate-meta" }, details.join(" · ")),
      ),
    );
  });
  const caller = (doc.call && doc.call.caller) || {};
  const titleId = doc.customer ? `pop-${safe}-chooser` : `pop-${safe}-name`;
  return h(
    "section",
    { class: "chooser", "aria-labelledby": titleId },
    h(
      "h2",
      { id: titleId, class: doc.customer ? "chooser-title small" : "chooser-title" },
      doc.customer ? "Not them? Others share this number" : `${candidates.length} customers share ${caller.e164 || caller.raw || "this number"}`,
    ),
    doc.customer ? null : h("p", { class: "muted" }, "Ask the caller's name, then choose. Your choice is remembered for this number."),
    h("ul", { class: "candidate-list" }, buttons),
    status,
  );
}

async function chooseCustomer(callId, customerId, button, status) {
  button.disabled = true;
  status.textContent = "";
  try {
    const result = await session.request("POST", `/api/calls/${encodeURIComponent(callId)}/match`, { customer_id: customerId });
    // The server re-pops over the websocket; use the answer too in case it carries the pop.
    if (result && result.customer && result.call) receivePop({ ...result, type: "pop" });
  } catch (error) {
    status.textContent = `Could not choose: ${error.message}`;
    button.disabled = false;
  }
}

function withheldPanel(doc, safe) {
  return h(
    "div",
    { class: "caller-panel caller-withheld" },
    h("h2", { id: `pop-${safe}-name`, class: "customer-name" }, h("span", { "aria-hidden": "true" }, "⊘ "), "Number withheld"),
    h(
      "p",
      null,
      "The caller's number is hidden and no account number was entered. Ask for their account number, postcode or email to find them.",
    ),
  );
}

function unknownCallerPanel(callId, doc, safe) {
  const caller = (doc.call && doc.call.caller) || {};
  const match = doc.match || {};
  const kind = pick(match, "number_type");
  const where = [
    pick(match, "location"),
    pick(match, "country") || pick(match, "region"),
    kind && kind !== "unknown" ? titleCase(kind) : null,
    pick(match, "carrier"),
  ]
    .filter((part, index, all) => part && all.indexOf(part) === index)
    .join(" · ");
  const status = h("p", { class: "form-note", role: "status" });
  const form = h(
    "form",
    {
      class: "quick-create",
      "aria-labelledby": `pop-${safe}-create`,
      onsubmit: (event) => quickCreate(event, callId, caller, status),
    },
    h("h3", { id: `pop-${safe}-create` }, "Quick-create this customer"),
    h(
      "div",
      { class: "form-grid" },
      field(`qc-name-${safe}`, "Name", h("input", { id: `qc-name-${safe}`, name: "name", required: true, autocomplete: "off" })),
      field(`qc-email-${safe}`, "Email", h("input", { id: `qc-email-${safe}`, name: "email", type: "email", autocomplete: "off" })),
      field(
        `qc-type-${safe}`,
        "Customer type",
        h("select", { id: `qc-type-${safe}`, name: "customer_type" }, CUSTOMER_TYPES.map((t) => h("option", { value: t }, titleCase(t)))),
      ),
      field(
        `qc-phone-${safe}`,
        "Phone",
        h("input", { id: `qc-phone-${safe}`, name: "phone", value: caller.e164 || caller.raw || "", autocomplete: "off" }),
      ),
    ),
    h(
      "label",
      { class: "check" },
      h("input", { type: "checkbox", name: "marketing_consent" }),
      " Caller agrees to marketing",
    ),
    h("button", { type: "submit", class: "btn btn-primary" }, "Create customer"),
    status,
  );
  return h(
    "div",
    { class: "caller-panel caller-unknown" },
    h("h2", { id: `pop-${safe}-name`, class: "customer-name" }, "New caller"),
    h("p", { class: "identity-meta" }, `${caller.e164 || caller.raw || "Unknown number"}${where ? ` · ${where}` : ""} · not in our records`),
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
    status.textContent = "Enter the caller's name.";
    form.elements.name.focus();
    return;
  }
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  status.textContent = "Creating…";
  try {
    const created = await session.request("POST", "/api/customers", body);
    const customerId = pick(created, "id", "customer_id") || (created && created.customer && created.customer.id);
    status.textContent = `${body.name} created.`;
    if (customerId) {
      await session.request("POST", `/api/calls/${encodeURIComponent(callId)}/match`, { customer_id: customerId });
    }
  } catch (error) {
    status.textContent = `Not created: ${error.message}`;
    button.disabled = false;
  }
}

// ---------------------------------------------------------------- wrap-up

function canWrapUp(entry) {
  return !entry.withdrawn && WRAPUP_STATES.has(entry.state);
}

function renderWrapup(id, entry) {
  const { wrapup, safe } = entry.card.parts;
  if (!canWrapUp(entry) && !entry.wrapupDone) {
    wrapup.replaceChildren();
    return;
  }
  if (wrapup.firstChild) return; // keep what the agent is typing
  const offers = (entry.doc.next_needs || []).filter((need) => need.may_offer !== false).slice(0, 4);
  const status = h("p", { class: "form-note", role: "status" });
  const form = h(
    "form",
    { class: "wrapup-form", "aria-labelledby": `wrapup-${safe}`, onsubmit: (event) => submitWrapup(event, id, entry, status, offers) },
    h("h3", { id: `wrapup-${safe}` }, "Wrap-up"),
    h(
      "div",
      { class: "form-grid" },
      field(
        `wu-disp-${safe}`,
        "Disposition",
        h(
          "select",
          { id: `wu-disp-${safe}`, name: "disposition", required: true },
          h("option", { value: "" }, "Choose…"),
          DISPOSITIONS.map(([value, label]) => h("option", { value }, label)),
        ),
      ),
    ),
    field(`wu-notes-${safe}`, "Notes", h("textarea", { id: `wu-notes-${safe}`, name: "notes", rows: "3" })),
    h(
      "fieldset",
      { class: "satisfaction" },
      h("legend", null, "Caller satisfaction"),
      h(
        "div",
        { class: "sat-scale" },
        SATISFACTION.map(([value, label]) =>
          h(
            "label",
            { class: "sat-option" },
            h("input", { type: "radio", name: "satisfaction", value }),
            h("span", { class: "sat-num" }, String(value)),
            h("span", { class: "sat-text" }, label),
          ),
        ),
      ),
    ),
    offers.length
      ? h(
          "fieldset",
          { class: "offers" },
          h("legend", null, "Offers"),
          offers.map((need, index) =>
            h(
              "div",
              { class: "offer-row", role: "radiogroup", "aria-label": `Outcome for ${need.name || need.sku}` },
              h("span", { class: "offer-name" }, productName(need.name || need.sku)),
              OUTCOMES.map(([value, label]) =>
                h(
                  "label",
                  { class: "offer-choice" },
                  h("input", { type: "radio", name: `offer-${index}`, value, checked: value === "not_offered" }),
                  ` ${label}`,
                ),
              ),
            ),
          ),
        )
      : null,
    h("button", { type: "submit", class: "btn btn-primary" }, "Save wrap-up"),
    status,
  );
  wrapup.replaceChildren(form);
}

async function submitWrapup(event, callId, entry, status, offers) {
  event.preventDefault();
  const form = event.currentTarget;
  const data = new FormData(form);
  if (!data.get("disposition")) {
    status.textContent = "Choose a disposition.";
    form.elements.disposition.focus();
    return;
  }
  const body = {
    disposition: data.get("disposition"),
    notes: String(data.get("notes") || ""),
    offers: offers.map((need, index) => ({ sku: need.sku, outcome: data.get(`offer-${index}`) || "not_offered" })),
  };
  if (data.get("satisfaction")) body.satisfaction = Number(data.get("satisfaction"));
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  status.textContent = "Saving…";
  try {
    await session.request("POST", `/api/calls/${encodeURIComponent(callId)}/wrapup`, body);
    wrapupSaved(callId, entry, "Wrap-up saved.");
  } catch (error) {
    if (error.status === 409) {
      wrapupSaved(callId, entry, "This call was already wrapped up.");
    } else {
      status.textContent = `Not saved: ${error.message}`;
      button.disabled = false;
    }
  }
}

function wrapupSaved(callId, entry, message) {
  entry.wrapupDone = true;
  entry.card.parts.wrapup.replaceChildren(
    h("p", { class: "wrapup-done", role: "status" }, h("span", { "aria-hidden": "true" }, "✓ "), message),
  );
  renderHead(callId, entry);
  announce(message);
  loadToday();
  // The server holds an agent in wrap-up after a call until they are ready again.
  if (chosenStatus() === "available") postStatus("available").catch(() => {});
}

// ---------------------------------------------------------------- today's calls

async function loadToday() {
  let data;
  try {
    data = await session.request("GET", "/api/calls/mine?today=true");
  } catch {
    return;
  }
  const calls = Array.isArray(data) ? data : (data && (data.calls || data.items)) || [];
  $("today-empty").hidden = calls.length > 0;
  $("today-list").replaceChildren(...calls.map(todayRow));
  for (const call of calls) {
    // A call that ended while we were offline: its card catches up.
    const entry = pops.get(call.id);
    if (entry && !entry.withdrawn && call.state && call.state !== entry.state && !LIVE_STATES.has(call.state)) {
      entry.state = call.state;
      renderHead(call.id, entry);
      renderWrapup(call.id, entry);
    }
  }
}

function todayRow(call) {
  const caller = call.caller || {};
  const name = pick(call, "customer_name") || (call.customer && call.customer.name) || (caller.withheld ? "Withheld" : caller.e164 || caller.raw || "Unknown");
  const state = call.state || "";
  const [icon, label] = STATE_LABELS[state] || ["•", titleCase(state)];
  const wrapped = call.wrapped_up === true;
  const needsWrapup = !wrapped && call.state === "ended" && call.answered_at;
  return h(
    "li",
    { class: "today-row", dataset: { callId: call.id } },
    h("span", { class: "today-time" }, timeOfDay(pick(call, "answered_at", "first_seen_at"))),
    h("span", { class: "today-name" }, name),
    h(
      "span",
      { class: `today-state today-state-${state}` },
      h("span", { "aria-hidden": "true" }, `${icon} `),
      label,
      wrapped ? h("span", { class: "today-wrapped" }, " · ✓ wrapped up") : null,
      needsWrapup ? h("span", { class: "today-pending" }, " · wrap-up pending") : null,
    ),
  );
}

// ---------------------------------------------------------------- start

function init() {
  session.onExpired = () => {
    session.signOut();
    showSignedOut("Your session has expired. Please sign in again.");
  };
  wireSignIn({
    form: $("sign-in-form"),
    error: $("sign-in-error"),
    session,
    onSignedIn: showSignedIn,
    onSubmitGesture: askNotificationPermission,
  });
  $("sign-out").addEventListener("click", () => {
    session.signOut();
    showSignedOut("");
  });
  $("notify-button").addEventListener("click", askNotificationPermission);
  $("today-refresh").addEventListener("click", loadToday);
  for (const radio of document.querySelectorAll("input[name=status]")) radio.addEventListener("change", changeStatus);
  document.addEventListener("visibilitychange", markSeenIfVisible);
  window.addEventListener("focus", markSeenIfVisible);
  if (session.current) showSignedIn(session.current);
  else showSignedOut("");
}

init();
