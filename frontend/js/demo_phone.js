// The demo phone, in demo mode only (agent.js loads it when the page carries the demo marker):
// the desk phone beside the screen. It shows the call the demo's PBX rings on this agent's phone
// (GET /api/demo/phone, asked every second) with Answer and Decline, then Hang up once
// answered (POST /api/demo/phone/answer|decline|hangup). The PBX posts the events a real one
// would; the pop and its state still arrive over the agent websocket, as with any PBX.

import { t } from "./i18n.js";
import { h } from "./ui.js";

const POLL_MS = 1000;

let session = null;
let card = null;
let timer = null;
const REDRAW = "redraw";
let shownKey = REDRAW; // call id and state whose buttons are on screen (kept while unchanged)
let generation = 0; // a sign-in or sign-out ends the asking of the one before

/** Show the phone for the signed-in agent and keep it current. */
export function start(currentSession) {
  session = currentSession;
  generation += 1;
  if (!card) card = build();
  card.hidden = false;
  refresh();
}

/** Signed out: hide the phone and stop asking. */
export function stop() {
  session = null;
  generation += 1;
  clearTimeout(timer);
  timer = null;
  shownKey = REDRAW;
  if (card) card.hidden = true;
}

function build() {
  const status = h("p", { class: "demo-phone-status", role: "status" }, t("No call on your phone."));
  // Outside the status region: a countdown read out every second would drown everything else.
  const countdown = h("p", { class: "muted demo-phone-countdown" });
  const buttons = h("div", { class: "demo-phone-buttons" });
  const error = h("p", { class: "refusal", role: "alert", hidden: true });
  const section = h(
    "section",
    { class: "card demo-phone", "aria-labelledby": "demo-phone-title" },
    h(
      "div",
      { class: "demo-phone-head" },
      h("h2", { id: "demo-phone-title" }, h("span", { "aria-hidden": "true" }, "☎ "), t("Demo phone")),
      h("p", { class: "muted" }, t("Calls here are simulated: answer, decline and hang up with these buttons, as on a desk phone.")),
    ),
    h("div", { class: "demo-phone-line" }, status, countdown, buttons),
    error,
  );
  section.parts = { status, countdown, buttons, error };
  const idle = document.getElementById("idle");
  idle.parentNode.insertBefore(section, idle);
  return section;
}

async function refresh() {
  clearTimeout(timer);
  if (!session) return;
  const asked = generation;
  let phone = null;
  try {
    phone = await session.request("GET", "/api/demo/phone");
  } catch {
    // Starting, or the server is away: the page's connection badge says so; ask again.
  }
  if (asked !== generation) return; // signed out or in again meanwhile: that one asks now
  if (phone) render(phone);
  clearTimeout(timer);
  timer = setTimeout(refresh, POLL_MS);
}

function callerText(call) {
  const caller = call.caller || {};
  return caller.withheld ? t("Number withheld") : caller.raw || t("Unknown number");
}

function render(phone) {
  const { status, countdown, buttons } = card.parts;
  const call = phone && phone.call;
  const ringing = Boolean(call && call.state === "ringing");
  card.classList.toggle("demo-phone-ringing", ringing);
  if (!call) status.textContent = t("No call on your phone.");
  else if (ringing) status.textContent = t("Ringing: {caller}", { caller: callerText(call) });
  else status.textContent = t("In call with {caller}", { caller: callerText(call) });
  const seconds = ringing ? Math.ceil(Number(call.rings_out_in_s || 0)) : null;
  countdown.textContent = ringing ? t("Rings out in {seconds} s", { seconds }) : "";
  countdown.hidden = !ringing;
  // Buttons are rebuilt only when the call or its state changes: focus stays where it is.
  const key = call ? `${call.id} ${call.state}` : "";
  if (key === shownKey) return;
  shownKey = key;
  if (!call) buttons.replaceChildren();
  else if (call.state === "ringing") {
    buttons.replaceChildren(
      button(t("Answer"), "btn btn-primary demo-answer", "answer", call.id),
      button(t("Decline"), "btn btn-ghost", "decline", call.id),
    );
  } else buttons.replaceChildren(button(t("Hang up"), "btn btn-primary demo-hangup", "hangup", call.id));
}

function button(label, className, action, callId) {
  return h("button", { type: "button", class: className, onclick: () => press(action, callId) }, label);
}

async function press(action, callId) {
  const { buttons, error } = card.parts;
  for (const b of buttons.querySelectorAll("button")) b.disabled = true;
  error.hidden = true;
  shownKey = REDRAW; // whatever happens, the buttons are drawn again
  try {
    const phone = await session.request("POST", `/api/demo/phone/${action}`, { call_id: callId });
    if (session) render(phone);
  } catch (failure) {
    // Too late (it rang out, the caller hung up) or refused: say why; the phone catches up.
    error.textContent = t("Phone: {reason}", { reason: failure.message });
    error.hidden = false;
  }
  refresh();
}
