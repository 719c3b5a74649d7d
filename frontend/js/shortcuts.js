// Keyboard shortcuts for what the agent does on the screen (answering stays with the phone),
// and the help overlay that lists them (press ?).

import { t } from "./i18n.js";
import { h } from "./ui.js";

function typing(target) {
  return target instanceof HTMLElement && (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName));
}

/** [keys, description] of every shortcut, for the overlay. */
function shortcutList() {
  return [
    ["/", t("Find a customer")],
    ["1 – 9", t("Choose a customer in the newest pop that asks you to")],
    ["w", t("Go to the wrap-up of the newest call")],
    ["Ctrl + Enter", t("Save the wrap-up you are typing")],
    ["a", t("Set my status to Available")],
    ["b", t("Set my status to Away (a break)")],
    ["Esc", t("Close this help, or the customer opened from search")],
    ["?", t("Show this help")],
  ];
}

/**
 * Wire the shortcuts. `actions` has search(), choose(n), wrapup(), status(state), escape();
 * each returns true when it did something.
 */
export function installShortcuts(dialog, actions) {
  const list = dialog.querySelector(".shortcut-list");
  list.replaceChildren(...shortcutList().map(([keys, what]) => h("div", { class: "shortcut" }, h("dt", null, h("kbd", null, keys)), h("dd", null, what))));
  dialog.querySelector(".help-close").addEventListener("click", () => dialog.close());
  document.addEventListener("keydown", (event) => {
    if (event.defaultPrevented) return;
    if ((event.ctrlKey || event.metaKey) && event.key === "Enter") {
      const form = event.target instanceof Element ? event.target.closest("form.wrapup-form") : null;
      if (form) {
        event.preventDefault();
        form.requestSubmit();
      }
      return;
    }
    if (event.key === "Escape") {
      if (dialog.open) return; // the dialog closes itself
      if (actions.escape()) event.preventDefault();
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target) || dialog.open) return;
    let done = false;
    if (event.key === "?") {
      dialog.showModal();
      done = true;
    } else if (event.key === "/") done = actions.search();
    else if (/^[1-9]$/.test(event.key)) done = actions.choose(Number(event.key));
    else if (event.key === "w") done = actions.wrapup();
    else if (event.key === "a") done = actions.status("available");
    else if (event.key === "b") done = actions.status("away");
    if (done) event.preventDefault();
  });
}
