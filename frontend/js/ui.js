// Small DOM and formatting helpers shared by both pages. Elements are built with h(), never from
// HTML strings, so customer data can never inject markup.

import { locale, t } from "./i18n.js";

/** h("p", {class: "x", onclick: fn}, "text", child, [more]) */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** The first present (not null/undefined/"") value among obj[key] for the keys. */
export function pick(obj, ...keys) {
  if (!obj) return undefined;
  for (const key of keys) {
    const value = obj[key];
    if (value !== undefined && value !== null && value !== "") return value;
  }
  return undefined;
}

export function titleCase(text) {
  if (!text) return "";
  return String(text)
    .replace(/[_-]+/g, " ")
    .replace(/\b\w/g, (c) => c.toUpperCase());
}

/** Catalogue names often arrive in capitals ("WHITE METAL LANTERN"); agents read them easier as words. */
export function productName(text) {
  const name = String(text || "");
  if (name !== name.toUpperCase()) return name;
  return name.toLowerCase().replace(/(^|[\s(/-])([a-z])/g, (_, sep, c) => sep + c.toUpperCase());
}

export function money(amount, currency = "GBP") {
  const value = Number(amount);
  if (amount === null || amount === undefined || Number.isNaN(value)) return "—";
  try {
    return new Intl.NumberFormat(locale(), { style: "currency", currency }).format(value);
  } catch {
    return `${value.toFixed(2)} ${currency}`;
  }
}

/** 75 -> "1:15", 3725 -> "1:02:05" */
export function clock(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(Number(seconds))) return "—";
  const s = Math.max(0, Math.round(Number(seconds)));
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return hh ? `${hh}:${String(mm).padStart(2, "0")}:${ss}` : `${mm}:${ss}`;
}

export function percent(share) {
  if (share === null || share === undefined || Number.isNaN(Number(share))) return "—";
  return `${Math.round(Number(share) * 100)}%`;
}

export function parseTime(value) {
  if (!value) return null;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? null : date;
}

export function shortDate(value) {
  const date = parseTime(value);
  if (!date) return "";
  return date.toLocaleDateString(locale(), { day: "numeric", month: "short", year: "numeric" });
}

export function timeOfDay(value) {
  const date = parseTime(value);
  if (!date) return "";
  return date.toLocaleTimeString(locale(), { hour: "2-digit", minute: "2-digit" });
}

/** "3 weeks ago", "yesterday", "today" — for dates an agent reads aloud. */
export function ago(value) {
  const date = parseTime(value);
  if (!date) return "";
  const days = Math.floor((Date.now() - date.getTime()) / 86400000);
  if (days < 1) return t("today");
  if (days < 2) return t("yesterday");
  if (days < 14) return t("{n} days ago", { n: days });
  if (days < 60) return t("{n} weeks ago", { n: Math.round(days / 7) });
  if (days < 730) return t("{n} months ago", { n: Math.round(days / 30) });
  return t("{n} years ago", { n: Math.round(days / 365) });
}

/** A contact's channel as the pages say it: phone, chat, email, SMS, social. */
export function channelName(channel) {
  return { phone: t("Phone"), chat: t("Chat"), email: t("Email"), sms: t("SMS"), social: t("Social") }[channel] || channel;
}

/**
 * A phone number as the caller would say it (national format), E.164 on hover and on copy:
 * a button that copies the E.164 form. `number` is {e164, national, raw} or a string.
 */
export function phoneNumber(number, { className = "phone" } = {}) {
  const value = typeof number === "string" ? { e164: number } : number || {};
  const e164 = value.e164 || null;
  const shown = value.national || e164 || value.raw || t("Unknown number");
  if (!e164) return h("span", { class: className }, shown);
  const button = h(
    "button",
    {
      type: "button",
      class: `${className} phone-copy`,
      title: t("{e164} (click to copy)", { e164 }),
      "aria-label": t("{number}, copy {e164}", { number: shown, e164 }),
      dataset: { e164 },
    },
    shown,
  );
  button.addEventListener("click", () => copyText(e164, button));
  // Copying the selected text gives the E.164 form too.
  button.addEventListener("copy", (event) => {
    event.clipboardData.setData("text/plain", e164);
    event.preventDefault();
  });
  return button;
}

async function copyText(text, button) {
  try {
    await navigator.clipboard.writeText(text);
    button.dataset.copied = "true";
    setTimeout(() => delete button.dataset.copied, 1500);
  } catch {
    // No clipboard permission (an insecure origin): the number stays on screen to read.
  }
}
