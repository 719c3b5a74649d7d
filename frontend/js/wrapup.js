// The wrap-up form: the queue's dispositions, notes, a satisfaction grade that says what it
// means and whose it is (the caller's own rating or the agent's impression), offer outcomes.
// Everything typed is saved to the server as a draft (PUT /api/calls/{id}/draft) within a
// second, so a reload, another device or the agent a call is transferred to picks it up.

import { t } from "./i18n.js";
import { satisfactionScale } from "./profile.js";
import { h, productName, timeOfDay } from "./ui.js";

const AUTOSAVE_MS = 700;
let dispositions = null;

/** Fetch the dispositions of every queue once per sign-in. */
export async function loadDispositions(session) {
  try {
    dispositions = await session.request("GET", "/api/dispositions");
  } catch {
    dispositions = null;
  }
}

function dispositionsFor(queue) {
  const fallback = [
    { code: "resolved", label: t("Resolved") },
    { code: "follow_up", label: t("Follow-up needed") },
  ];
  if (!dispositions) return fallback;
  return (queue && dispositions.queues && dispositions.queues[queue]) || dispositions.default || fallback;
}

function outcomes() {
  return [
    ["accepted", t("Accepted")],
    ["declined", t("Declined")],
    ["not_offered", t("Not offered")],
  ];
}

function field(id, label, control) {
  return h("div", { class: "field" }, h("label", { for: id }, label), control);
}

function satisfactionFieldset(safe) {
  const meaning = h("p", { class: "sat-meaning", id: `wu-sat-meaning-${safe}`, "aria-live": "polite" }, t("Choose the grade that fits the call."));
  const scale = satisfactionScale();
  const show = (value) => {
    const found = scale.find(([v]) => String(v) === String(value));
    meaning.textContent = found ? `${found[0]} · ${found[1]}: ${found[2]}` : t("Choose the grade that fits the call.");
  };
  const fieldset = h(
    "fieldset",
    { class: "satisfaction", "aria-describedby": `wu-sat-meaning-${safe}` },
    h("legend", null, t("Caller satisfaction")),
    h(
      "div",
      { class: "sat-scale" },
      scale.map(([value, label, means]) =>
        h(
          "label",
          { class: "sat-option", title: means, onmouseenter: () => show(value), onmouseleave: () => show(checkedValue(fieldset)) },
          h("input", { type: "radio", name: "satisfaction", value, onchange: () => show(value) }),
          h("span", { class: "sat-num" }, String(value)),
          h("span", { class: "sat-text" }, label),
        ),
      ),
    ),
    meaning,
    h(
      "div",
      { class: "sat-kind", role: "radiogroup", "aria-label": t("Whose grade is this?") },
      h("span", { class: "sat-kind-label", "aria-hidden": "true" }, t("Whose grade is this?")),
      h("label", { class: "check" }, h("input", { type: "radio", name: "satisfaction_kind", value: "caller" }), ` ${t("Caller's own rating")}`),
      h("label", { class: "check" }, h("input", { type: "radio", name: "satisfaction_kind", value: "agent", checked: true }), ` ${t("My impression")}`),
    ),
  );
  fieldset.showMeaning = show;
  return fieldset;
}

function checkedValue(root) {
  const checked = root.querySelector("input[name=satisfaction]:checked");
  return checked ? checked.value : null;
}

/** The form's values as a draft / wrap-up body. */
function formValues(form, offers) {
  const data = new FormData(form);
  const body = {
    disposition: String(data.get("disposition") || "") || null,
    notes: String(data.get("notes") || ""),
    offers: offers.map((need, index) => ({ sku: need.sku, outcome: data.get(`offer-${index}`) || "not_offered" })),
  };
  if (data.get("satisfaction")) {
    body.satisfaction = Number(data.get("satisfaction"));
    body.satisfaction_kind = data.get("satisfaction_kind") || "agent";
  }
  return body;
}

function fillForm(form, draft, offers, fieldset) {
  if (draft.disposition && [...form.elements.disposition.options].some((o) => o.value === draft.disposition)) {
    form.elements.disposition.value = draft.disposition;
  }
  if (draft.notes) form.elements.notes.value = draft.notes;
  if (draft.satisfaction) {
    const radio = form.querySelector(`input[name=satisfaction][value="${Number(draft.satisfaction)}"]`);
    if (radio) radio.checked = true;
    fieldset.showMeaning(draft.satisfaction);
  }
  if (draft.satisfaction_kind) {
    const kind = form.querySelector(`input[name=satisfaction_kind][value="${draft.satisfaction_kind === "caller" ? "caller" : "agent"}"]`);
    if (kind) kind.checked = true;
  }
  for (const saved of draft.offers || []) {
    const index = offers.findIndex((need) => need.sku === saved.sku);
    const radio = index >= 0 && form.querySelector(`input[name="offer-${index}"][value="${saved.outcome}"]`);
    if (radio) radio.checked = true;
  }
}

/**
 * The wrap-up form of one call. `onDone(message)` runs once the wrap-up is recorded (or was
 * already). The draft is loaded from the server and saved as the agent types.
 */
export function wrapupForm({ session, callId, queue, offers, safe, onDone }) {
  const status = h("p", { class: "form-note", role: "status" });
  const draftNote = h("p", { class: "draft-note muted" });
  const fieldset = satisfactionFieldset(safe);
  let touched = false;
  let timer = null;
  let saving = Promise.resolve();
  const url = `/api/calls/${encodeURIComponent(callId)}`;

  const saveDraft = () => {
    clearTimeout(timer);
    timer = null;
    const body = formValues(form, offers);
    saving = session
      .request("PUT", `${url}/draft`, body)
      .then((saved) => {
        draftNote.textContent = t("Draft saved at {time}", { time: timeOfDay(saved.updated_at) || timeOfDay(new Date().toISOString()) });
        draftNote.dataset.saved = "true";
      })
      .catch((error) => {
        draftNote.dataset.saved = "false";
        draftNote.textContent = t("Draft not saved: {reason}", { reason: error.message });
      });
    return saving;
  };
  const schedule = () => {
    touched = true;
    draftNote.dataset.saved = "pending";
    clearTimeout(timer);
    timer = setTimeout(saveDraft, AUTOSAVE_MS);
  };

  const form = h(
    "form",
    {
      class: "wrapup-form",
      "aria-labelledby": `wrapup-${safe}`,
      dataset: { callId },
      oninput: schedule,
      onchange: schedule,
      onsubmit: (event) => submit(event),
    },
    h("h3", { id: `wrapup-${safe}` }, t("Wrap-up")),
    field(
      `wu-disp-${safe}`,
      t("Disposition"),
      h(
        "select",
        { id: `wu-disp-${safe}`, name: "disposition", required: true },
        h("option", { value: "" }, t("Choose…")),
        dispositionsFor(queue).map((d) => h("option", { value: d.code }, d.label)),
      ),
    ),
    field(`wu-notes-${safe}`, t("Notes"), h("textarea", { id: `wu-notes-${safe}`, name: "notes", rows: "3" })),
    fieldset,
    offers.length
      ? h(
          "fieldset",
          { class: "offers" },
          h("legend", null, t("Offers")),
          offers.map((need, index) =>
            h(
              "div",
              { class: "offer-row", role: "radiogroup", "aria-label": t("Outcome for {product}", { product: productName(need.name || need.sku) }) },
              h("span", { class: "offer-name" }, productName(need.name || need.sku)),
              outcomes().map(([value, label]) =>
                h("label", { class: "offer-choice" }, h("input", { type: "radio", name: `offer-${index}`, value, checked: value === "not_offered" }), ` ${label}`),
              ),
            ),
          ),
        )
      : null,
    h(
      "div",
      { class: "wrapup-actions" },
      h("button", { type: "submit", class: "btn btn-primary" }, t("Save wrap-up")),
      h("span", { class: "muted shortcut-hint" }, h("kbd", null, "Ctrl"), "+", h("kbd", null, "Enter")),
    ),
    status,
    draftNote,
  );

  async function submit(event) {
    event.preventDefault();
    const body = formValues(form, offers);
    if (!body.disposition) {
      status.textContent = t("Choose a disposition.");
      form.elements.disposition.focus();
      return;
    }
    clearTimeout(timer);
    await saving;
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    status.textContent = t("Saving…");
    try {
      await session.request("POST", `${url}/wrapup`, body);
      onDone(t("Wrap-up saved."));
    } catch (error) {
      if (error.status === 409) {
        onDone(t("This call was already wrapped up."));
      } else {
        status.textContent = t("Not saved: {reason}", { reason: error.message });
        button.disabled = false;
      }
    }
  }

  session
    .request("GET", `${url}/draft`)
    .then((draft) => {
      if (draft.wrapped_up) {
        onDone(t("This call was already wrapped up."));
        return;
      }
      if (touched || !draft.updated_at) return;
      fillForm(form, draft, offers, fieldset);
      draftNote.textContent =
        draft.updated_by && draft.updated_by !== (session.current || {}).username
          ? t("Notes so far from {agent}, saved at {time}", { agent: draft.updated_by, time: timeOfDay(draft.updated_at) })
          : t("Draft saved at {time}", { time: timeOfDay(draft.updated_at) });
    })
    .catch(() => {});
  return form;
}
