// Every string a person reads goes through t(). The English text is the key; a translation is
// one file, frontend/i18n/<language>.json, mapping each English string to its translation.
// The language is the first of the browser's languages that has a file (English otherwise).

export const LANGUAGES = ["en", "fr"];
const LOCALES = { en: "en-GB", fr: "fr-FR" };

let strings = {};
let language = "en";

/** The first supported language among the browser's preferences. */
export function chooseLanguage(preferred = navigator.languages || [navigator.language || "en"]) {
  for (const tag of preferred) {
    const base = String(tag || "").toLowerCase().split("-")[0];
    if (LANGUAGES.includes(base)) return base;
  }
  return "en";
}

export function currentLanguage() {
  return language;
}

/** The locale for numbers, money and dates in the chosen language. */
export function locale() {
  return LOCALES[language] || "en-GB";
}

/** Load the catalogue for the browser's language and translate the page's static text. */
export async function loadStrings(root = document) {
  language = chooseLanguage();
  strings = {};
  if (language !== "en") {
    try {
      const response = await fetch(`/static/i18n/${language}.json`);
      if (response.ok) strings = await response.json();
      else language = "en";
    } catch {
      language = "en"; // the page still works, in English
    }
  }
  document.documentElement.lang = language;
  translatePage(root);
}

/** t("Call from {name}", {name}) -> the translation, with {placeholders} filled in. */
export function t(text, vars) {
  const template = Object.prototype.hasOwnProperty.call(strings, text) ? strings[text] : text;
  if (!vars) return template;
  return template.replace(/\{(\w+)\}/g, (whole, key) => (vars[key] === undefined ? whole : String(vars[key])));
}

/**
 * Static text in the HTML, translated once at load: elements marked data-i18n have their text
 * translated; data-i18n-attr="title,aria-label" names attributes to translate too.
 */
export function translatePage(root = document) {
  if (language === "en") return;
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.textContent.trim());
  for (const el of root.querySelectorAll("[data-i18n-attr]")) {
    for (const name of el.dataset.i18nAttr.split(",")) {
      const value = el.getAttribute(name.trim());
      if (value) el.setAttribute(name.trim(), t(value));
    }
  }
  document.title = t(document.title);
}
