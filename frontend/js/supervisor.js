// The supervisor wallboard: what a floor supervisor looks for first (service level, calls
// waiting, the longest wait, agents by state), then queues, agents, today's totals, the
// waiting trend, and pop health in a details view. TV mode fills a screen and scales with it.
// Data: GET /api/queues on sign-in, then {"type": "queues", ...} frames from WS /ws/supervisor.

import { loadStrings, locale, t } from "./i18n.js";
import { LiveSocket, socketUrl } from "./live.js";
import { Session, wireSignIn } from "./session.js";
import { channelName, clock, h, percent, phoneNumber, pick, titleCase } from "./ui.js";

await loadStrings();

const session = new Session();
const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";

// Colour is never the only signal: every state has an icon and a word.
const AGENT_STATES = {
  available: ["●", t("Available")],
  away: ["◐", t("Away")],
  ringing: ["☎", t("Ringing")],
  on_call: ["◉", t("On call")],
  in_call: ["◉", t("On call")],
  busy: ["◉", t("On call")],
  wrap_up: ["✎", t("Wrap-up")],
  wrapup: ["✎", t("Wrap-up")],
  logged_out: ["○", t("Logged out")],
  offline: ["○", t("Logged out")],
};
// The order agents' states are counted in the headline.
const HEADLINE_STATES = [
  ["available", ["available"]],
  ["on_call", ["on_call", "in_call", "busy", "ringing"]],
  ["wrap_up", ["wrap_up", "wrapup"]],
  ["away", ["away"]],
];
const TV_KEY = "screenpop.supervisor.tv";
// The lane of calls that name no queue (GET /api/queues lists it under this name).
const UNROUTED = "unrouted";
const SERVICE_TARGET = 0.8; // the usual 80/20 goal: 80% answered within the queue's threshold
const TREND_WINDOW_MS = 60 * 60 * 1000;
const TREND_SAMPLE_MS = 5 * 1000;
const TREND_KEY = "screenpop.supervisor.trend";

let live = null;
let snapshot = null;
let snapshotAt = 0;
let trend = loadTrend();
let lastSampleAt = 0;

// ---------------------------------------------------------------- sign-in

function isSupervisor(role) {
  return role === "supervisor" || role === "admin";
}

function showSignedOut(message) {
  if (live) live.stop();
  live = null;
  $("board").hidden = true;
  $("session-tools").hidden = true;
  $("offline-banner").hidden = true;
  $("sign-in").hidden = false;
  $("sign-in-error").textContent = message || "";
  $("username").focus();
}

async function showSignedIn(user) {
  $("sign-in").hidden = true;
  $("board").hidden = false;
  $("session-tools").hidden = false;
  $("who").textContent = user.username;
  renderTrend();
  if (live) live.stop();
  try {
    applySnapshot(await session.request("GET", "/api/queues"));
  } catch {
    // The websocket sends a snapshot on connect as well.
  }
  live = new LiveSocket({
    url: () => socketUrl("/ws/supervisor", { token: session.token }),
    onMessage: (message) => {
      if (message.type === "queues") applySnapshot(message);
    },
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
  } else if (state === "connecting") {
    badge.textContent = t("Connecting…");
  } else if (state === "unauthorised") {
    session.signOut();
    showSignedOut(t("Your session has expired or you may not see these queues. Please sign in again."));
  } else {
    badge.textContent = `○ ${t("Offline")}`;
    banner.hidden = false;
    const seconds = retryInMs ? Math.max(1, Math.round(retryInMs / 1000)) : null;
    banner.textContent = seconds
      ? t("Offline: the figures below are frozen and may be out of date; reconnecting in {seconds} s.", { seconds })
      : t("Offline: the figures below are frozen and may be out of date.");
  }
}

// ---------------------------------------------------------------- rendering

/** Agents who are users of ours: an agent only the phone system names (known: false) is
 * shown apart and left out of the floor's counts. */
function ourAgents(agents) {
  return agents.filter((agent) => agent.known !== false);
}

function applySnapshot(data) {
  if (!data || !Array.isArray(data.queues)) return;
  snapshot = data;
  snapshotAt = Date.now();
  renderHeadline(data.queues, ourAgents(data.agents || []));
  renderHealth(data.pop_health || {});
  renderFloor(data.queues, ourAgents(data.agents || []));
  renderQueues(data.queues);
  renderAgents(data.agents || []);
  sampleTrend(true);
  $("updated").textContent = t("Updated {time}", { time: new Date().toLocaleTimeString(locale()) });
}

/** The queues' service levels weighted by calls offered (null when no queue has one). */
function overallServiceLevel(queues) {
  let weight = 0;
  let total = 0;
  for (const queue of queues) {
    if (queue.service_level === null || queue.service_level === undefined) continue;
    const w = Math.max(1, Number(queue.offered || 0));
    weight += w;
    total += w * Number(queue.service_level);
  }
  return weight ? total / weight : null;
}

function renderHeadline(queues, agents) {
  const waiting = queues.reduce((sum, queue) => sum + (queue.waiting || []).length, 0);
  const longest = Math.max(0, ...queues.map((queue) => Number(pick(queue, "longest_wait_s") || 0)));
  const level = overallServiceLevel(queues);
  const levelKind = level === null ? "" : level >= SERVICE_TARGET ? "good" : level >= SERVICE_TARGET - 0.2 ? "warn" : "bad";
  const counts = HEADLINE_STATES.map(([key, states]) => {
    const [icon, label] = AGENT_STATES[key];
    const n = agents.filter((agent) => states.includes(agent.state)).length;
    return h("span", { class: `headline-agent agent-${key}` }, h("span", { "aria-hidden": "true" }, `${icon} `), h("b", null, String(n)), ` ${label}`);
  });
  $("headline").replaceChildren(
    h("div", { class: `headline-figure headline-level level-${levelKind || "none"}` }, h("dt", null, t("Service level")), h("dd", null, level === null ? "—" : percent(level))),
    h("div", { class: `headline-figure${waiting ? " headline-busy" : ""}` }, h("dt", null, t("Waiting")), h("dd", { dataset: { field: "waiting-total" } }, String(waiting))),
    h(
      "div",
      { class: "headline-figure" },
      h("dt", null, t("Longest wait")),
      h("dd", { dataset: { tick: waiting ? "wait" : null, base: longest } }, clock(waiting ? longest : 0)),
    ),
    h("div", { class: "headline-figure headline-agents" }, h("dt", null, t("Agents")), h("dd", null, counts)),
  );
}

function stat(label, value, kind) {
  return h("div", { class: `stat${kind ? ` stat-${kind}` : ""}` }, h("dt", null, label), h("dd", null, value));
}

function renderHealth(health) {
  const ms = (value) => (value === null || value === undefined ? "—" : `${Math.round(Number(value))} ms`);
  $("health").replaceChildren(
    stat(t("Matched"), percent(pick(health, "match_rate")), "match"),
    stat(t("Multi-match"), percent(pick(health, "multi_match_rate"))),
    stat(t("Unmatched"), pick(health, "unmatched") ?? "—"),
    stat(t("Pop p50"), ms(pick(health, "pop_p50_ms"))),
    stat(t("Pop p95"), ms(pick(health, "pop_p95_ms"))),
  );
}

function renderFloor(queues, agents) {
  const sum = (key) => queues.reduce((total, queue) => total + Number(queue[key] || 0), 0);
  const count = (...states) => agents.filter((agent) => states.includes(agent.state)).length;
  $("floor").replaceChildren(
    stat(t("Offered"), sum("offered")),
    stat(t("Answered"), sum("answered")),
    stat(t("Abandoned"), sum("abandoned"), sum("abandoned") > 0 ? "abandoned" : null),
    stat(t("Agents free"), count("available")),
    stat(t("On a call"), count("on_call", "ringing")),
  );
}

function renderQueues(queues) {
  $("queues-empty").hidden = queues.length > 0;
  $("queues").replaceChildren(...queues.map(queueTile));
}

function queueTile(queue) {
  const waiting = queue.waiting || [];
  const abandonRate = queue.offered ? queue.abandoned / queue.offered : null;
  const longest = pick(queue, "longest_wait_s") ?? (waiting.length ? Math.max(...waiting.map((w) => w.waiting_s || 0)) : 0);
  const busy = waiting.length > 0;
  const unrouted = queue.name === UNROUTED;
  return h(
    "article",
    {
      class: `card queue-tile${busy ? " queue-busy" : ""}${unrouted ? " queue-unrouted" : ""}`,
      "aria-labelledby": `queue-${queue.name}`,
      dataset: { queue: queue.name },
    },
    h("h3", { id: `queue-${queue.name}`, class: "queue-name" }, unrouted ? t("Unrouted calls") : titleCase(queue.name)),
    unrouted
      ? h("p", { class: "queue-note muted" }, t("Calls that named no queue and whose dialed number reaches none. Route them in the phone system, or give the number to a queue."))
      : null,
    h(
      "div",
      { class: "queue-headline" },
      h(
        "div",
        { class: "big-figure" },
        h("span", { class: "big-number", dataset: { field: "waiting" } }, String(waiting.length)),
        h("span", { class: "big-label" }, t("waiting")),
      ),
      h(
        "div",
        { class: "big-figure" },
        h("span", { class: "big-number", dataset: { tick: "wait", base: longest, field: "longest" } }, clock(longest)),
        h("span", { class: "big-label" }, t("longest wait")),
      ),
      gauge(queue.service_level, pick(queue, "service_level_s", "threshold_s")),
    ),
    h(
      "dl",
      { class: "queue-stats" },
      stat(t("Offered"), queue.offered ?? 0),
      stat(t("Answered"), queue.answered ?? 0, "answered"),
      stat(
        t("Abandoned"),
        `${queue.abandoned ?? 0}${abandonRate !== null ? ` (${percent(abandonRate)})` : ""}`,
        queue.abandoned > 0 ? "abandoned" : null,
      ),
      stat(t("ASA"), clock(queue.asa_s)),
      stat(t("AHT"), clock(queue.aht_s)),
      channelStat(queue.channels),
    ),
    h(
      "div",
      { class: "waiting" },
      h("h4", null, t("Waiting now")),
      waiting.length
        ? h("ol", { class: "waiting-list" }, waiting.map(waitingRow))
        : h("p", { class: "muted" }, t("Nobody waiting.")),
    ),
  );
}

/** Contacts offered today by channel ("Phone 2 · Chat 1"); none when every one was a call. */
function channelStat(channels) {
  const names = Object.keys(channels || {}).filter((name) => channels[name].offered > 0);
  if (!names.length || (names.length === 1 && names[0] === "phone")) return null;
  const text = names.map((name) => `${channelName(name)} ${channels[name].offered}`).join(" · ");
  return h("div", { class: "stat stat-channels", dataset: { field: "channels" } }, h("dt", null, t("By channel")), h("dd", null, text));
}

function waitingRow(item) {
  const caller = item.caller || {};
  // A known customer by name; an unknown caller by their number as the desk shows it
  // (national format, E.164 on hover and copy).
  const name = item.customer_name || (caller.withheld ? t("Withheld number") : phoneNumber(caller, { className: "waiting-phone" }));
  const tier = item.value_tier;
  return h(
    "li",
    { class: "waiting-row", dataset: { callId: item.call_id } },
    h("span", { class: "waiting-name" }, name),
    item.channel && item.channel !== "phone" ? h("span", { class: "badge badge-channel", dataset: { channel: item.channel } }, channelName(item.channel)) : null,
    tier
      ? h("span", { class: `badge badge-tier tier-${tier}` }, h("span", { "aria-hidden": "true" }, tier === "high" ? "★ " : tier === "medium" ? "◆ " : "○ "), tierName(tier))
      : h("span", { class: "badge badge-new" }, item.customer_name ? t("Known") : caller.withheld ? t("Withheld") : t("New caller")),
    h("span", { class: "waiting-time", dataset: { tick: "wait", base: item.waiting_s || 0 } }, clock(item.waiting_s)),
  );
}

function gauge(share, thresholdS) {
  const hasValue = share !== null && share !== undefined && !Number.isNaN(Number(share));
  const value = hasValue ? Math.max(0, Math.min(1, Number(share))) : 0;
  const onTarget = hasValue && value >= SERVICE_TARGET;
  const level = !hasValue ? "none" : onTarget ? "good" : value >= SERVICE_TARGET - 0.2 ? "warn" : "bad";
  const radius = 42;
  const length = 2 * Math.PI * radius;
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 100 100");
  svg.setAttribute("class", "gauge-ring");
  svg.setAttribute("aria-hidden", "true");
  const track = document.createElementNS(SVG, "circle");
  const arc = document.createElementNS(SVG, "circle");
  for (const circle of [track, arc]) {
    circle.setAttribute("cx", "50");
    circle.setAttribute("cy", "50");
    circle.setAttribute("r", String(radius));
    circle.setAttribute("fill", "none");
    circle.setAttribute("stroke-width", "12");
  }
  track.setAttribute("class", "gauge-track");
  arc.setAttribute("class", "gauge-arc");
  arc.setAttribute("stroke-dasharray", `${(value * length).toFixed(1)} ${length.toFixed(1)}`);
  arc.setAttribute("stroke-linecap", value > 0 ? "round" : "butt");
  arc.setAttribute("transform", "rotate(-90 50 50)");
  svg.append(track, arc);
  const verdict = !hasValue ? t("no answers yet") : onTarget ? t("▲ on target") : t("▼ below target");
  return h(
    "div",
    {
      class: `gauge gauge-${level}`,
      role: "img",
      "aria-label": t("Service level {value}, {verdict}, target {target}", {
        value: hasValue ? percent(value) : t("not available"),
        verdict,
        target: percent(SERVICE_TARGET),
      }),
    },
    svg,
    h("span", { class: "gauge-value" }, hasValue ? percent(value) : "—"),
    h("span", { class: "gauge-label" }, t("service level")),
    thresholdS ? h("span", { class: "gauge-sub" }, t("answered ≤ {seconds} s", { seconds: thresholdS })) : null,
    h("span", { class: "gauge-verdict" }, verdict),
  );
}

function renderAgents(agents) {
  $("agents-empty").hidden = agents.length > 0;
  // Our agents by name, then the agents only the phone system knows.
  const sorted = [...agents].sort(
    (a, b) => Number(a.known === false) - Number(b.known === false) || String(a.username).localeCompare(String(b.username)),
  );
  $("agents").replaceChildren(...sorted.map(agentCard));
}

function agentCard(agent) {
  const key = String(agent.state || "logged_out").toLowerCase().replace(/[\s-]+/g, "_");
  const [icon, label] = AGENT_STATES[key] || ["•", titleCase(key)];
  const unknown = agent.known === false;
  // Prefer the server's own count (immune to this screen's clock being off); tick from there.
  const since = Date.parse(agent.since || "");
  const inState = agent.in_state_s ?? (Number.isNaN(since) ? null : (Date.now() - since) / 1000);
  return h(
    "li",
    {
      class: `card agent agent-${key}${unknown ? " agent-unknown" : ""}`,
      dataset: unknown ? { username: agent.username, known: "false" } : { username: agent.username },
      title: unknown ? t("No user is this agent: the phone system named them. Add them (screenpop user add) or correct the name in the phone system.") : null,
    },
    h("span", { class: "agent-name" }, agent.username),
    h("span", { class: "agent-state" }, h("span", { class: "agent-icon", "aria-hidden": "true" }, icon), ` ${label}`),
    unknown ? h("span", { class: "agent-unknown-note" }, h("span", { "aria-hidden": "true" }, "? "), t("Unknown agent")) : null,
    h(
      "span",
      { class: "agent-time" },
      h(
        "span",
        { class: "agent-clock", dataset: inState === null ? {} : { tick: "wait", base: inState } },
        inState === null ? "—" : clock(inState),
      ),
      h("span", { class: "agent-time-label" }, ` ${t("in state")}`),
    ),
    h("span", { class: "agent-handled" }, t("{n} handled", { n: agent.handled ?? 0 })),
  );
}

// ---------------------------------------------------------------- ticking and the trend

function tick() {
  const now = new Date();
  $("wall-clock").textContent = now.toLocaleTimeString(locale(), { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  const drift = (Date.now() - snapshotAt) / 1000;
  for (const el of document.querySelectorAll("[data-tick=wait]")) {
    // Waiting and in-state times were true at the snapshot; they grow until the next one.
    el.textContent = clock(Number(el.dataset.base) + drift);
  }
  sampleTrend(false);
}

function totalWaiting() {
  if (!snapshot) return null;
  return snapshot.queues.reduce((sum, queue) => sum + (queue.waiting || []).length, 0);
}

function sampleTrend(force) {
  const now = Date.now();
  const value = totalWaiting();
  if (value === null) return;
  if (!force && now - lastSampleAt < TREND_SAMPLE_MS) return;
  lastSampleAt = now;
  trend.push([now, value]);
  trend = trend.filter(([t]) => now - t <= TREND_WINDOW_MS);
  try {
    sessionStorage.setItem(TREND_KEY, JSON.stringify(trend));
  } catch {
    // Storage full or disabled: the chart still works for this page's life.
  }
  renderTrend();
}

function loadTrend() {
  try {
    const stored = JSON.parse(sessionStorage.getItem(TREND_KEY) || "[]");
    return Array.isArray(stored) ? stored.filter(([t]) => Date.now() - t <= TREND_WINDOW_MS) : [];
  } catch {
    return [];
  }
}

function renderTrend() {
  const width = 600;
  const height = 150;
  const pad = { left: 34, right: 10, top: 12, bottom: 24 };
  const now = Date.now();
  const peak = Math.max(4, ...trend.map(([, v]) => v));
  const x = (t) => pad.left + ((t - (now - TREND_WINDOW_MS)) / TREND_WINDOW_MS) * (width - pad.left - pad.right);
  const y = (v) => height - pad.bottom - (v / peak) * (height - pad.top - pad.bottom);
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("class", "trend-svg");
  svg.setAttribute("role", "img");
  const current = trend.length ? trend[trend.length - 1][1] : 0;
  const highest = trend.length ? Math.max(...trend.map(([, v]) => v)) : 0;
  const summary = t("Calls waiting over the last hour: now {current}, peak {highest}.", { current, highest });
  svg.setAttribute("aria-label", summary);
  const add = (tag, attrs, text) => {
    const el = document.createElementNS(SVG, tag);
    for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, String(value));
    if (text !== undefined) el.textContent = text;
    svg.append(el);
    return el;
  };
  for (const v of [0, Math.round(peak / 2), peak]) {
    add("line", { x1: pad.left, x2: width - pad.right, y1: y(v), y2: y(v), class: "trend-grid" });
    add("text", { x: pad.left - 6, y: y(v) + 4, class: "trend-axis", "text-anchor": "end" }, String(v));
  }
  add("text", { x: pad.left, y: height - 6, class: "trend-axis" }, t("60 min ago"));
  add("text", { x: (pad.left + width - pad.right) / 2, y: height - 6, class: "trend-axis", "text-anchor": "middle" }, t("30 min"));
  add("text", { x: width - pad.right, y: height - 6, class: "trend-axis", "text-anchor": "end" }, t("now"));
  if (trend.length) {
    // A step line: the count holds until the next sample.
    let path = `M ${x(trend[0][0]).toFixed(1)} ${y(trend[0][1]).toFixed(1)}`;
    for (let i = 1; i < trend.length; i += 1) {
      path += ` H ${x(trend[i][0]).toFixed(1)} V ${y(trend[i][1]).toFixed(1)}`;
    }
    path += ` H ${x(now).toFixed(1)}`;
    const baseline = y(0).toFixed(1);
    add("path", { d: `${path} V ${baseline} H ${x(trend[0][0]).toFixed(1)} Z`, class: "trend-area" });
    add("path", { d: path, class: "trend-line" });
    const [lastT, lastV] = trend[trend.length - 1];
    add("circle", { cx: x(lastT).toFixed(1), cy: y(lastV).toFixed(1), r: 4, class: "trend-dot" });
  }
  $("trend-chart").replaceChildren(svg, h("p", { class: "trend-summary" }, t("Now {current} · peak {highest}", { current, highest })));
}

// ---------------------------------------------------------------- start

// ---------------------------------------------------------------- TV mode

function tierName(tier) {
  return { high: t("High"), medium: t("Medium"), low: t("Low") }[tier] || titleCase(tier);
}

/** TV mode: the board fills the screen and its type scales with the screen's width. */
function setTvMode(on) {
  document.documentElement.classList.toggle("tv", on);
  $("tv-button").setAttribute("aria-pressed", on ? "true" : "false");
  $("tv-button").querySelector(".tv-label").textContent = on ? t("Leave TV mode") : t("TV mode");
  localStorage.setItem(TV_KEY, on ? "on" : "off");
  if (on && document.fullscreenEnabled && !document.fullscreenElement) {
    document.documentElement.requestFullscreen().catch(() => {});
  } else if (!on && document.fullscreenElement) {
    document.exitFullscreen().catch(() => {});
  }
}

function init() {
  session.onExpired = () => {
    session.signOut();
    showSignedOut(t("Your session has expired. Please sign in again."));
  };
  session.onChange = (current) => {
    if (current && isSupervisor(current.role)) showSignedIn(current);
    else if (!current) showSignedOut("");
  };
  const wantTv = new URLSearchParams(window.location.search).get("tv");
  setTvMode(wantTv === "1" || (wantTv === null && localStorage.getItem(TV_KEY) === "on"));
  $("tv-button").addEventListener("click", () => setTvMode(!document.documentElement.classList.contains("tv")));
  wireSignIn({
    form: $("sign-in-form"),
    error: $("sign-in-error"),
    session,
    requireRole: isSupervisor,
    onSignedIn: showSignedIn,
  });
  $("sign-out").addEventListener("click", () => {
    session.signOut();
    showSignedOut("");
  });
  setInterval(tick, 1000);
  tick();
  const current = session.current;
  if (current && isSupervisor(current.role)) showSignedIn(current);
  else showSignedOut("");
}

init();
