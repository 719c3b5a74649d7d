// The agent screen: sign in, status, the pop while the phone rings, wrap-up, the desk (search,
// customer timeline) and today's calls. Messages follow DESIGN.md ("Agents and supervisors"):
// pop, pop.update, call.state.

import { flashTitle, notify, ring, ringButtonLabel, ringEnabled, setRingEnabled, stopFlash } from "./alerts.js";
import { callerOf, callerPanels, spokenNumber, tierText } from "./callers.js";
import { customerCard, searchBox, sortToday, todayRow } from "./desk.js";
import { loadStrings, t } from "./i18n.js";
import { LiveSocket, socketUrl } from "./live.js";
import { isMasked, profile } from "./profile.js";
import { Session, wireSignIn } from "./session.js";
import { installShortcuts } from "./shortcuts.js";
import { channelName, h, money, phoneNumber, pick } from "./ui.js";
import { loadDispositions, wrapupForm } from "./wrapup.js";

await loadStrings();
// Demo mode (the server marks the page): the demo phone, to answer the simulated calls.
const demoPhone = document.querySelector('meta[name="screenpop-demo"]') ? await import("./demo_phone.js") : null;

const session = new Session();
const $ = (id) => document.getElementById(id);

function stateLabels() {
  return {
    queued: ["⋯", t("In queue")],
    ringing: ["☎", t("Ringing")],
    answered: ["●", t("In call")],
    held: ["‖", t("On hold")],
    transferred: ["↷", t("Transferred away")],
    ended: ["■", t("Call ended")],
    abandoned: ["✕", t("Caller hung up")],
    withdrawn: ["↷", t("Answered by another agent")],
    missed: ["↷", t("Offer ended: not answered here")],
  };
}
const STATE_LABELS = stateLabels();
const LIVE_STATES = new Set(["queued", "ringing", "answered", "held"]);
const WRAPUP_STATES = new Set(["answered", "held", "ended"]);
const WITHDRAWN_LINGER_MS = 30000;
const PENDING_CARDS = 5;

/** call id -> {doc, version, state, withdrawn, seenVersion, card, wrapupDone, compact} */
const pops = new Map();
let live = null;
let connectedOnce = false;
let signedInAs = null;
const { chooser, withheldPanel, unknownCallerPanel } = callerPanels({
  session,
  onPop: (message) => receivePop(message),
  onOpenCustomer: (customerId) => openCustomer(customerId, "search"),
});

// ---------------------------------------------------------------- sign-in and session

function showSignedOut(message) {
  if (live) live.stop();
  live = null;
  signedInAs = null;
  for (const entry of pops.values()) entry.card.remove();
  pops.clear();
  closeCustomer();
  $("workspace").hidden = true;
  $("session-tools").hidden = true;
  $("offline-banner").hidden = true;
  $("sign-in").hidden = false;
  $("sign-in-error").textContent = message || "";
  if (demoPhone) demoPhone.stop();
  $("username").focus();
}

async function showSignedIn(user) {
  signedInAs = user.username;
  $("sign-in").hidden = true;
  $("workspace").hidden = false;
  $("session-tools").hidden = false;
  $("who").textContent = user.username;
  updateNotifyButton();
  updateRingButton();
  updateIdle();
  loadStatus();
  await loadDispositions(session);
  loadToday();
  connect();
  if (demoPhone) demoPhone.start(session);
  const wanted = new URLSearchParams(window.location.search).get("customer");
  if (wanted && /^\d+$/.test(wanted)) openCustomer(Number(wanted), "lookup");
  loadPending();
}

function askNotificationPermission() {
  // Browsers only prompt inside a user gesture (the sign-in click or the alerts button).
  if ("Notification" in window && Notification.permission === "default") {
    Notification.requestPermission().then(updateNotifyButton, () => {});
  }
}

function updateNotifyButton() {
  $("notify-button").hidden = !("Notification" in window) || Notification.permission !== "default";
}

function updateRingButton() {
  const button = $("ring-button");
  button.setAttribute("aria-pressed", ringEnabled() ? "true" : "false");
  button.querySelector(".ring-label").textContent = ringButtonLabel();
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

/** Every refused action says why, next to where it was tried. */
function showRefusal(element, text) {
  element.textContent = text;
  element.hidden = !text;
}

async function changeStatus(state) {
  const before = chosenStatus();
  showRefusal($("status-error"), "");
  setStatusRadio(state);
  try {
    await postStatus(state);
    sessionStorage.setItem(STATUS_KEY, state);
    announce(state === "away" ? t("You are away: no calls will be offered.") : t("You are available."));
  } catch (error) {
    setStatusRadio(before);
    const text = t("Status not changed: {reason}", { reason: error.message });
    showRefusal($("status-error"), text);
    announce(text);
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
    badge.textContent = `● ${t("Live")}`;
    banner.hidden = true;
    // The server replays live pops on connect; the list catches up with calls that ended.
    if (connectedOnce) loadToday();
    connectedOnce = true;
    if (chosenStatus() === "away") postStatus("away").catch(() => {});
  } else if (state === "connecting") {
    badge.textContent = t("Connecting…");
  } else if (state === "unauthorised") {
    session.signOut();
    showSignedOut(t("Your session has expired. Please sign in again."));
  } else {
    const seconds = retryInMs ? Math.max(1, Math.round(retryInMs / 1000)) : null;
    badge.textContent = `○ ${t("Offline")}`;
    banner.hidden = false;
    banner.textContent = [
      state === "offline" ? t("You are offline: this computer has no network.") : t("You are offline: the pop server cannot be reached."),
      t("Pops cannot reach you until the connection is back."),
      seconds ? t("Trying again in {seconds} s.", { seconds }) : "",
    ].join(" ");
  }
}

function handleMessage(message) {
  if (message.type === "pop") receivePop(message);
  else if (message.type === "pop.update") receivePopUpdate(message);
  else if (message.type === "call.state") receiveCallState(message);
}

function callIdOf(message) {
  return pick(message, "call_id") || (message.call && message.call.id);
}

/** A card for a call: a new pop goes on top; a call reopened from history below the live ones. */
function newEntry(id, version, { fromHistory = false } = {}) {
  if (!fromHistory) compactFinishedCards();
  const entry = { version, state: null, withdrawn: false, seenVersion: 0, wrapupDone: false, compact: false, fromHistory };
  pops.set(id, entry);
  entry.card = buildCard(id);
  if (fromHistory) $("pops").append(entry.card);
  else $("pops").prepend(entry.card);
  return entry;
}

function receivePop(message) {
  const id = callIdOf(message);
  if (!id) return;
  const version = Number(message.version || 0);
  let entry = pops.get(id);
  const isNew = !entry || entry.fromHistory;
  if (entry && !entry.fromHistory && version < entry.version) return; // an older copy
  if (!entry) entry = newEntry(id, version);
  entry.fromHistory = false;
  entry.doc = message;
  entry.version = version;
  entry.state = (message.call && message.call.state) || entry.state || "ringing";
  entry.compact = false;
  if (entry.withdrawn) {
    // Offered to us again (a transfer back, a re-offer): the card is live once more.
    entry.withdrawn = false;
    entry.ownLeg = false;
    clearTimeout(entry.removeTimer);
  }
  renderCard(id, entry);
  ack(id, version);
  if (isNew) {
    const text = announcement(message);
    announce(text);
    focusCard(entry.card);
    flashTitle(`☎ ${text}`);
    if (entry.state === "ringing" || entry.state === "queued") ring();
    notify(text, notifyBody(message), `screenpop-${id}`);
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
    const talking = ["answered", "held"].includes(entry.state);
    entry.withdrawn = true;
    entry.state = withdrawnState(message.state);
    entry.reason = message.reason || null;
    // Transferred after talking: the leg was this agent's, and so is its wrap-up.
    entry.ownLeg = talking && entry.reason === "transferred";
    if (entry.ownLeg) entry.state = "transferred";
    const [, label] = STATE_LABELS[entry.state];
    announce(t("Call withdrawn: {name}. {state}.", { name: displayName(entry.doc), state: label }));
    clearTimeout(entry.removeTimer);
    if (!entry.ownLeg) entry.removeTimer = setTimeout(() => removePop(id), WITHDRAWN_LINGER_MS);
  } else if (message.state) {
    entry.state = message.state;
    if (message.state === "abandoned") announce(t("{name} hung up.", { name: displayName(entry.doc) }));
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
    if (entry.seenVersion < entry.version && !entry.withdrawn && !entry.fromHistory) {
      entry.seenVersion = entry.version;
      if (live) live.send({ type: "seen", call_id: id, version: entry.version });
    }
  }
}

/** Focus moves to a new pop, unless the agent is typing (a wrap-up, a search). */
function focusCard(card) {
  const active = document.activeElement;
  const typing = active && ["INPUT", "TEXTAREA", "SELECT"].includes(active.tagName) && active.type !== "radio";
  if (!typing) card.focus({ preventScroll: false });
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
  $("idle").hidden = pops.size > 0 || !$("customer-view").hidden;
}

// ---------------------------------------------------------------- announcements

function displayName(doc) {
  if (doc.customer && doc.customer.name) return doc.customer.name;
  const caller = callerOf(doc);
  if (caller.withheld) return t("a withheld number");
  return spokenNumber(caller) || t("an unknown caller");
}

function announcement(doc) {
  const kind = doc.match && doc.match.kind;
  const tier = doc.insights && doc.insights.value_tier;
  if (doc.customer && doc.customer.name) {
    return tier ? t("Call from {name}, {tier}", { name: doc.customer.name, tier: tierText(tier) }) : t("Call from {name}", { name: doc.customer.name });
  }
  if (kind === "multiple") {
    return t("Call from {name}, {count} possible customers: choose one", { name: displayName(doc), count: (doc.match.candidates || []).length });
  }
  if (kind === "withheld") return t("Call from a withheld number");
  return t("Call from {name}, not a known customer", { name: displayName(doc) });
}

function notifyBody(doc) {
  const balance = doc.account && !isMasked(doc.account) ? t("Balance {amount}", { amount: money(doc.account.balance, doc.account.currency) }) : "";
  const queue = doc.call && doc.call.queue ? t("Queue {queue}", { queue: doc.call.queue }) : "";
  return [queue, balance].filter(Boolean).join(" · ");
}

function announce(text) {
  const region = $("announcer");
  // Clearing first makes screen readers announce the same sentence twice in a row.
  region.textContent = "";
  setTimeout(() => {
    region.textContent = text;
  }, 50);
}

// ---------------------------------------------------------------- the pop card

function buildCard(id) {
  const safe = id.replace(/[^A-Za-z0-9_-]/g, "_");
  const head = h("header", { class: "pop-head" });
  const body = h("div", { class: "pop-body" });
  const wrapup = h("div", { class: "pop-wrapup" });
  const jump = h(
    "a",
    { class: "btn btn-primary wrapup-jump", href: `#wrapup-${safe}`, hidden: true, onclick: (event) => goToWrapup(event, id) },
    t("Go to wrap-up"),
  );
  const card = h(
    "article",
    { class: "card pop", "aria-labelledby": `pop-${safe}-name`, dataset: { callId: id }, tabindex: "-1" },
    head,
    body,
    wrapup,
    jump,
  );
  card.parts = { head, body, wrapup, jump, safe };
  return card;
}

function goToWrapup(event, id) {
  const entry = pops.get(id);
  const form = entry && entry.card.querySelector("form.wrapup-form");
  if (!form) return false;
  if (event) event.preventDefault();
  form.scrollIntoView({ block: "nearest" });
  form.elements.disposition.focus();
  return true;
}

function renderCard(id, entry) {
  renderHead(id, entry);
  renderBody(id, entry);
  renderWrapup(id, entry);
}

function renderHead(id, entry) {
  const { head } = entry.card.parts;
  const call = entry.doc.call || {};
  const caller = call.caller || {};
  // Chat, email, SMS, social: shown as such (a call is the default and carries no label).
  const channel = call.channel && call.channel !== "phone" ? call.channel : null;
  const state = entry.state || "ringing";
  const [icon, label] = STATE_LABELS[state] || ["•", state];
  entry.card.className = `card pop pop-state-${state}${entry.withdrawn ? " pop-withdrawn" : ""}${entry.compact ? " pop-compact" : ""}`;
  const dismissible = !LIVE_STATES.has(state) && (state !== "ended" || entry.wrapupDone || !canWrapUp(entry));
  head.replaceChildren(
    h("span", { class: `call-state call-state-${state}`, role: "status" }, h("span", { "aria-hidden": "true" }, icon), ` ${label}`),
    call.queue ? h("span", { class: "pop-head-detail" }, t("Queue {queue}", { queue: call.queue })) : "",
    channel ? h("span", { class: "pop-head-detail pop-channel", dataset: { channel } }, channelName(channel)) : "",
    caller.withheld
      ? h("span", { class: "pop-head-detail" }, t("Number withheld"))
      : channel && !caller.raw
        ? "" // a chat or an email without a number: its channel says enough
        : phoneNumber(caller, { className: "pop-head-detail pop-number" }),
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
            entry.compact ? t("Show profile") : t("Fold profile"),
          ),
      dismissible ? h("button", { type: "button", class: "btn btn-ghost btn-small", onclick: () => removePop(id) }, t("Dismiss")) : null,
    ),
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
        from ? t("↷ Transferred from {agent}", { agent: from }) : t("↷ Transferred"),
        notes ? h("span", { class: "transfer-notes" }, `: “${notes}”`) : null,
      ),
    );
  }
  if (doc.complete === false) parts.push(h("p", { class: "muted loading-note" }, t("Loading the rest of the profile…")));
  if (match.kind === "multiple") parts.push(chooser(id, doc, safe));
  if (doc.customer) parts.push(profile(doc, `pop-${safe}-name`));
  else if (match.kind === "withheld") parts.push(withheldPanel(id, safe));
  else if (match.kind !== "multiple") parts.push(unknownCallerPanel(id, doc, safe));
  body.replaceChildren(...parts);
}

// ---------------------------------------------------------------- wrap-up

function canWrapUp(entry) {
  return Boolean(entry.ownLeg) || (!entry.withdrawn && WRAPUP_STATES.has(entry.state));
}

function renderWrapup(id, entry) {
  const { wrapup, jump } = entry.card.parts;
  const open = canWrapUp(entry) && !entry.wrapupDone;
  jump.hidden = !open;
  if (!canWrapUp(entry) && !entry.wrapupDone) {
    wrapup.replaceChildren();
    return;
  }
  if (wrapup.firstChild) return; // keep what the agent is typing
  const offers = (entry.doc.next_needs || []).filter((need) => need.may_offer !== false).slice(0, 4);
  const call = entry.doc.call || {};
  wrapup.replaceChildren(
    wrapupForm({
      session,
      callId: id,
      queue: call.queue,
      offers: entry.doc.customer && entry.doc.customer.marketing_consent === false ? [] : offers,
      safe: entry.card.parts.safe,
      onDone: (message) => wrapupSaved(id, entry, message),
    }),
  );
}

function wrapupSaved(callId, entry, message) {
  if (entry.wrapupDone) return;
  entry.wrapupDone = true;
  entry.card.parts.jump.hidden = true;
  entry.card.parts.wrapup.replaceChildren(h("p", { class: "wrapup-done", role: "status" }, h("span", { "aria-hidden": "true" }, "✓ "), message));
  renderHead(callId, entry);
  announce(message);
  loadToday();
  // The server holds an agent in wrap-up after a call until they are ready again.
  if (chosenStatus() === "available") postStatus("available").catch(() => {});
}

// ---------------------------------------------------------------- calls reopened from history

/** Open a call of today (or a pending wrap-up) as a card: its profile and, if due, wrap-up. */
async function openCall(callId, { focus = true, pending = false } = {}) {
  const existing = pops.get(callId);
  if (existing) {
    existing.compact = false;
    renderHead(callId, existing);
    if (focus) {
      existing.card.scrollIntoView({ block: "start" });
      existing.card.focus({ preventScroll: true });
    }
    return;
  }
  let call;
  try {
    call = await session.request("GET", `/api/calls/${encodeURIComponent(callId)}`);
  } catch (error) {
    showRefusal($("today-error"), t("Call not opened: {reason}", { reason: error.message }));
    return;
  }
  let doc = { call: { id: call.id, state: call.state, caller: call.caller, queue: call.queue }, match: call.match || {} };
  if (call.customer_id) {
    try {
      const found = await session.request("GET", `/api/customers/${call.customer_id}/profile?call_id=${encodeURIComponent(callId)}`);
      doc = { ...found, ...doc };
    } catch {
      // The call still opens, with its wrap-up, without the profile.
    }
  }
  if (pops.has(callId)) return; // the live pop arrived meanwhile
  const entry = newEntry(callId, 0, { fromHistory: true });
  entry.doc = doc;
  entry.state = call.state;
  if (pending && LIVE_STATES.has(call.state) && call.agent !== (session.current || {}).username) {
    // A pending wrap-up of a call this agent transferred: their leg is over, its wrap-up due.
    entry.state = "transferred";
    entry.ownLeg = true;
  }
  renderCard(callId, entry);
  updateIdle();
  if (focus) {
    entry.card.scrollIntoView({ block: "start" });
    entry.card.focus({ preventScroll: true });
  }
}

async function loadPending() {
  let data;
  try {
    data = await session.request("GET", "/api/calls/mine/pending");
  } catch {
    return;
  }
  for (const pending of (data.calls || []).slice(0, PENDING_CARDS).reverse()) {
    if (!pops.has(pending.call_id)) await openCall(pending.call_id, { focus: false, pending: true });
  }
}

// ---------------------------------------------------------------- the desk: search and customers

async function openCustomer(customerId, reason) {
  const view = $("customer-view");
  showRefusal($("finder-error"), "");
  let card;
  try {
    card = await customerCard(session, customerId, { reason, onClose: closeCustomer });
  } catch (error) {
    showRefusal($("finder-error"), t("Customer not opened: {reason}", { reason: error.message }));
    return;
  }
  view.replaceChildren(card);
  view.hidden = false;
  updateIdle();
  card.scrollIntoView({ block: "start" });
  card.focus({ preventScroll: true });
}

function closeCustomer() {
  const view = $("customer-view");
  if (view.hidden) return false;
  view.hidden = true;
  view.replaceChildren();
  updateIdle();
  return true;
}

// ---------------------------------------------------------------- today's calls

async function loadToday() {
  let data;
  try {
    data = await session.request("GET", "/api/calls/mine?today=true");
  } catch {
    return;
  }
  const calls = sortToday(Array.isArray(data) ? data : (data && data.calls) || []);
  $("today-empty").hidden = calls.length > 0;
  $("today-list").replaceChildren(...calls.map((call) => todayRow(call, STATE_LABELS, (row) => openCall(row.id))));
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

// ---------------------------------------------------------------- keyboard

function newestEntry(test) {
  for (const card of $("pops").children) {
    const entry = pops.get(card.dataset.callId);
    if (entry && test(entry, card)) return [card.dataset.callId, entry];
  }
  return [null, null];
}

const shortcutActions = {
  search: () => {
    $("finder-input").focus();
    return true;
  },
  choose: (n) => {
    const [, entry] = newestEntry((e, card) => card.querySelector(`.candidate[data-choice="${n}"]`) !== null && LIVE_STATES.has(e.state));
    if (!entry) return false;
    entry.card.querySelector(`.candidate[data-choice="${n}"]`).click();
    return true;
  },
  wrapup: () => {
    const [id] = newestEntry((e) => canWrapUp(e) && !e.wrapupDone);
    return id ? goToWrapup(null, id) : false;
  },
  status: (state) => {
    changeStatus(state);
    return true;
  },
  escape: () => closeCustomer(),
};

// ---------------------------------------------------------------- start

function init() {
  session.onExpired = () => {
    session.signOut();
    showSignedOut(t("Your session has expired. Please sign in again."));
  };
  session.onChange = (current) => {
    // Signed in or out in another tab of this browser.
    if (!current && signedInAs) showSignedOut(t("You signed out in another tab."));
    else if (current && current.username !== signedInAs) {
      if (signedInAs) showSignedOut("");
      showSignedIn(current);
    }
  };
  wireSignIn({ form: $("sign-in-form"), error: $("sign-in-error"), session, onSignedIn: showSignedIn, onSubmitGesture: askNotificationPermission });
  $("sign-out").addEventListener("click", () => {
    session.signOut();
    showSignedOut("");
  });
  $("notify-button").addEventListener("click", askNotificationPermission);
  $("ring-button").addEventListener("click", () => {
    setRingEnabled(!ringEnabled());
    updateRingButton();
  });
  $("help-button").addEventListener("click", () => $("help").showModal());
  $("today-refresh").addEventListener("click", loadToday);
  for (const radio of document.querySelectorAll("input[name=status]")) {
    radio.addEventListener("change", (event) => changeStatus(event.target.value));
  }
  const finder = searchBox({
    session,
    label: t("Find a customer"),
    inputId: "finder-input",
    onOpen: (customer) => openCustomer(customer.id, "search"),
  });
  $("finder").append(finder.element);
  installShortcuts($("help"), shortcutActions);
  document.addEventListener("visibilitychange", markSeenIfVisible);
  window.addEventListener("focus", () => {
    markSeenIfVisible();
    stopFlash();
  });
  if (session.current) showSignedIn(session.current);
  else showSignedOut("");
}

init();
