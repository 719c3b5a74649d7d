// The reports page: every report is a table from GET /api/reports/{name} ({"columns", "rows"}),
// drawn the same way, with a "by" choice where the report has one, other choices (filters)
// where it has them, and a CSV download of what is shown. Columns named *_rate or *_share are
// shares (drawn as percents with a bar); a column named change is signed (+0.5).

import { loadStrings, locale, t } from "./i18n.js";
import { Session, wireSignIn } from "./session.js";
import { h, percent, productName } from "./ui.js";

await loadStrings();

const session = new Session();
const $ = (id) => document.getElementById(id);

// name, title, what it means, its "by" choices (the first is the default) and its filters
// (a query parameter and its choices; an empty value sends nothing).
const REPORTS = [
  {
    name: "retention",
    title: t("Retention and defection"),
    about: t("Customers who were active at the start of each period, and how many of them defected."),
    by: [["month", t("By month")], ["segment", t("By segment")]],
  },
  {
    name: "value",
    title: t("Value of the customer base"),
    about: t("The sum of every customer's forecast lifetime value, over time."),
    by: [],
  },
  {
    name: "offers",
    title: t("Offers made in calls"),
    about: t("Products offered in calls and how many were accepted. A suggestion the agent did not make counts as not offered, outside the conversion rate."),
    by: [["product", t("By product")], ["agent", t("By agent")]],
  },
  {
    name: "satisfaction",
    title: t("Satisfaction"),
    about: t("Grades from wrap-ups (1 very disappointed to 5 very satisfied), month by month."),
    by: [["queue", t("By queue")], ["agent", t("By agent")]],
    filters: [
      {
        name: "kind",
        label: t("Whose grades"),
        choices: [["", t("All grades")], ["caller", t("Callers' own")], ["agent", t("Agents' impressions")]],
      },
    ],
  },
];

// Column headings; a column not listed here shows its name.
const HEADINGS = {
  month: t("Month"),
  segment: t("Segment"),
  product: t("Product"),
  agent: t("Agent"),
  queue: t("Queue"),
  day: t("Day"),
  active_start: t("Active at start"),
  defected: t("Defected"),
  retained: t("Retained"),
  retention_rate: t("Retention rate"),
  defection_rate: t("Defection rate"),
  new: t("New customers"),
  won_back: t("Won back"),
  customers: t("Customers"),
  clv_forecast: t("Forecast value"),
  clv_historic: t("Value to date"),
  high_customers: t("High value: customers"),
  high_clv_forecast: t("High value: forecast"),
  medium_customers: t("Medium value: customers"),
  medium_clv_forecast: t("Medium value: forecast"),
  low_customers: t("Low value: customers"),
  low_clv_forecast: t("Low value: forecast"),
  sku: t("SKU"),
  calls: t("Calls"),
  offered: t("Offered"),
  accepted: t("Accepted"),
  conversion_rate: t("Conversion"),
  not_offered: t("Not offered"),
  graded: t("Graded"),
  average: t("Average"),
  satisfied_share: t("Satisfied (4-5)"),
  dissatisfied_share: t("Dissatisfied (1-2)"),
  change: t("Change"),
};

const isShare = (column) => column.endsWith("_rate") || column.endsWith("_share");

function heading(column) {
  return HEADINGS[column] || column.replace(/_/g, " ");
}

function cellOf(column, value) {
  if (value === null || value === undefined) return h("td", { class: "muted" }, "–");
  if (isShare(column) && typeof value === "number") {
    return h(
      "td",
      { class: "num" },
      h("span", { class: "share-bar", style: `--share: ${Math.max(0, Math.min(1, value))}` }),
      percent(value),
    );
  }
  if (column === "change" && typeof value === "number") {
    const signed = value.toLocaleString(locale(), { signDisplay: "exceptZero" });
    return h("td", { class: `num ${value > 0 ? "change-up" : value < 0 ? "change-down" : ""}` }, signed);
  }
  if (typeof value === "number") return h("td", { class: "num" }, value.toLocaleString(locale()));
  return h("td", {}, column === "product" ? productName(value) : String(value));
}

function table(report, data) {
  if (!data.rows.length) return h("p", { class: "muted" }, t("Nothing to show for this period."));
  return h(
    "div",
    // Focusable, so a table wider than the screen scrolls from the keyboard too.
    { class: "table-scroll", tabindex: "0", role: "region", "aria-label": report.title },
    h(
      "table",
      { class: "report-table" },
      h("caption", { class: "visually-hidden" }, report.title),
      h("thead", {}, h("tr", {}, ...data.columns.map((c) => h("th", { scope: "col" }, heading(c))))),
      h("tbody", {}, ...data.rows.map((row) => h("tr", {}, ...data.columns.map((c) => cellOf(c, row[c]))))),
    ),
  );
}

// The report's choices as query parameters: "by" and its filters, from the section's selects.
function choices(section) {
  return [...section.querySelectorAll("select[data-param]")].map((select) => [select.dataset.param, select.value]);
}

function query(report, chosen, format) {
  const params = new URLSearchParams();
  const start = $("range-start").value;
  const end = $("range-end").value;
  if (start) params.set("start", start);
  if (end) params.set("end", end);
  for (const [name, value] of chosen) if (value) params.set(name, value);
  if (format) params.set("format", format);
  const text = params.toString();
  return `/api/reports/${report.name}${text ? `?${text}` : ""}`;
}

async function download(report, section) {
  const response = await fetch(query(report, choices(section), "csv"), {
    headers: { Authorization: `Bearer ${session.token}` },
  });
  if (!response.ok) return;
  const link = h("a", { href: URL.createObjectURL(await response.blob()), download: `${report.name}.csv` });
  document.body.append(link);
  link.click();
  link.remove();
}

async function load(report, section) {
  const body = section.querySelector(".report-body");
  body.setAttribute("aria-busy", "true");
  try {
    const data = await session.request("GET", query(report, choices(section)));
    const covered = data.start && data.end ? h("p", { class: "muted report-period" }, t("From {start} to {end}", data)) : "";
    body.replaceChildren(covered, table(report, data));
  } catch (error) {
    body.replaceChildren(h("p", { class: "form-error", role: "alert" }, error.message));
  } finally {
    body.removeAttribute("aria-busy");
  }
}

function sectionOf(report) {
  const id = `report-${report.name}`;
  const tools = h("div", { class: "report-tools" });
  const by = report.by.length ? [{ name: "by", label: t("Show"), choices: report.by }] : [];
  for (const filter of [...by, ...(report.filters || [])]) {
    const select = h(
      "select",
      { id: `${id}-${filter.name}`, "data-param": filter.name },
      ...filter.choices.map(([value, label]) => h("option", { value }, label)),
    );
    tools.append(h("label", { for: select.id }, filter.label), select);
  }
  const csv = h("button", { type: "button", class: "btn btn-ghost" }, t("Download CSV"));
  tools.append(csv);
  const section = h(
    "section",
    { class: "card report", id, "aria-labelledby": `${id}-title` },
    h("h2", { id: `${id}-title` }, report.title),
    h("p", { class: "muted" }, report.about),
    tools,
    h("div", { class: "report-body", "aria-live": "polite" }),
  );
  for (const select of section.querySelectorAll("select")) select.addEventListener("change", () => load(report, section));
  csv.addEventListener("click", () => download(report, section));
  return section;
}

function loadAll() {
  for (const report of REPORTS) load(report, $(`report-${report.name}`));
}

function showSignedOut(message) {
  $("reports").hidden = true;
  $("session-tools").hidden = true;
  $("sign-in").hidden = false;
  $("sign-in-error").textContent = message || "";
  $("username").focus();
}

function showSignedIn(user) {
  $("sign-in").hidden = true;
  $("reports").hidden = false;
  $("session-tools").hidden = false;
  $("who").textContent = user.username;
  loadAll();
}

const isSupervisor = (role) => role === "supervisor" || role === "admin";

function start() {
  $("report-sections").replaceChildren(...REPORTS.map(sectionOf));
  $("range").addEventListener("submit", (event) => {
    event.preventDefault();
    loadAll();
  });
  session.onExpired = () => showSignedOut(t("Your session has expired. Please sign in again."));
  session.onChange = (current) => (current && isSupervisor(current.role) ? showSignedIn(current) : showSignedOut(""));
  wireSignIn({ form: $("sign-in-form"), error: $("sign-in-error"), session, requireRole: isSupervisor, onSignedIn: showSignedIn });
  $("sign-out").addEventListener("click", () => {
    session.signOut();
    showSignedOut("");
  });
  const current = session.current;
  if (current && isSupervisor(current.role)) showSignedIn(current);
  else showSignedOut("");
}

start();
