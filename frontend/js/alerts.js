// How a new call gets the agent's attention: a title that flashes until the page is looked
// at, a short ring (opt-in, remembered in this browser), a desktop notification when the tab
// is hidden (with permission).

import { t } from "./i18n.js";

const RING_KEY = "screenpop.agent.ring";
const FLASH_MS = 1000;
const FLASH_FOR_MS = 15000;

let flashTimer = null;
let flashStop = null;
let audio = null;

export function ringEnabled() {
  return localStorage.getItem(RING_KEY) === "on";
}

export function setRingEnabled(on) {
  localStorage.setItem(RING_KEY, on ? "on" : "off");
  // Browsers start audio only after a gesture: this click is one.
  if (on) context();
}

function context() {
  const Audio = window.AudioContext || window.webkitAudioContext;
  if (!Audio) return null;
  if (!audio) audio = new Audio();
  if (audio.state === "suspended") audio.resume().catch(() => {});
  return audio;
}

/** Two short tones (about 0.6 s), only when the agent turned the ring on. */
export function ring() {
  if (!ringEnabled()) return false;
  const ctx = context();
  if (!ctx) return false;
  const start = ctx.currentTime + 0.02;
  for (const [offset, frequency] of [
    [0, 880],
    [0.3, 660],
  ]) {
    const osc = ctx.createOscillator();
    const gain = ctx.createGain();
    osc.frequency.value = frequency;
    gain.gain.setValueAtTime(0.0001, start + offset);
    gain.gain.exponentialRampToValueAtTime(0.2, start + offset + 0.03);
    gain.gain.exponentialRampToValueAtTime(0.0001, start + offset + 0.25);
    osc.connect(gain).connect(ctx.destination);
    osc.start(start + offset);
    osc.stop(start + offset + 0.27);
  }
  document.body.dataset.rang = String(Number(document.body.dataset.rang || 0) + 1);
  return true;
}

/** Alternate the tab's title with `text` until the page is used or 15 s have passed. */
export function flashTitle(text) {
  stopFlash();
  const original = document.title;
  let on = true;
  document.title = text;
  flashTimer = setInterval(() => {
    on = !on;
    document.title = on ? text : original;
  }, FLASH_MS);
  const stop = () => {
    clearInterval(flashTimer);
    clearTimeout(flashStop);
    flashTimer = null;
    document.title = original;
    window.removeEventListener("keydown", stop);
    window.removeEventListener("pointerdown", stop);
  };
  flashStop = setTimeout(stop, FLASH_FOR_MS);
  window.addEventListener("keydown", stop, { once: true });
  window.addEventListener("pointerdown", stop, { once: true });
  stopFlash.current = stop;
}

export function stopFlash() {
  if (stopFlash.current) stopFlash.current();
  stopFlash.current = null;
}

/** A desktop notification when the tab is hidden; clicking it brings the page forward. */
export function notify(title, body, tag) {
  if (!document.hidden || !("Notification" in window) || Notification.permission !== "granted") return;
  try {
    const note = new Notification(title, { body, tag });
    note.onclick = () => {
      window.focus();
      note.close();
    };
  } catch {
    // Some browsers only allow notifications from a service worker; the page still shows the pop.
  }
}

export function ringButtonLabel() {
  return ringEnabled() ? t("Ring: on") : t("Ring: off");
}
