// One websocket that stays up: reconnects with exponential backoff and jitter, reports its state,
// and queues what the page sends while it is down. Shared by the agent screen and the wallboard.
// The server replays what is still live on every (re)connect, so the page only has to render.

const CLOSE_UNAUTHORISED = new Set([1008, 4401, 4403]);

export class LiveSocket {
  /**
   * @param {object} options
   * @param {() => string} options.url  called on every attempt, so a fresh token is used
   * @param {(message: object) => void} options.onMessage  each parsed JSON frame
   * @param {(status: {state: string, attempt: number, retryInMs?: number}) => void} options.onStatus
   *        state is "connecting", "open", "retrying", "offline" (the browser has no network)
   *        or "unauthorised" (the server refused the token; no retry)
   */
  constructor({ url, onMessage, onStatus, minDelayMs = 500, maxDelayMs = 10000 }) {
    this.url = url;
    this.onMessage = onMessage;
    this.onStatus = onStatus || (() => {});
    this.minDelayMs = minDelayMs;
    this.maxDelayMs = maxDelayMs;
    this.attempt = 0;
    this.ws = null;
    this.timer = null;
    this.stopped = true;
    this.outbox = [];
    this.onOnline = () => this.reconnectNow();
    this.onOffline = () => {
      this.onStatus({ state: "offline", attempt: this.attempt });
      // A socket may look open for a while after the network is gone; drop it now.
      if (this.ws) this.ws.close();
    };
  }

  start() {
    this.stopped = false;
    window.addEventListener("online", this.onOnline);
    window.addEventListener("offline", this.onOffline);
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    window.removeEventListener("online", this.onOnline);
    window.removeEventListener("offline", this.onOffline);
    if (this.ws) {
      this.ws.onclose = null;
      this.ws.close(1000);
      this.ws = null;
    }
    this.outbox = [];
  }

  get isOpen() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  /** Send a JSON message now, or as soon as the connection is back. */
  send(message) {
    const frame = JSON.stringify(message);
    if (this.isOpen) this.ws.send(frame);
    else this.outbox.push(frame);
  }

  reconnectNow() {
    if (this.stopped || this.isOpen) return;
    clearTimeout(this.timer);
    this.attempt = 0;
    this.connect();
  }

  connect() {
    if (this.stopped) return;
    this.onStatus({ state: "connecting", attempt: this.attempt });
    let ws;
    try {
      ws = new WebSocket(this.url());
    } catch (error) {
      this.scheduleRetry();
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      this.attempt = 0;
      this.onStatus({ state: "open", attempt: 0 });
      const pending = this.outbox.splice(0);
      for (const frame of pending) ws.send(frame);
    };
    ws.onmessage = (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return; // not ours to interpret
      }
      this.onMessage(message);
    };
    ws.onclose = (event) => {
      if (this.ws === ws) this.ws = null;
      if (this.stopped) return;
      if (CLOSE_UNAUTHORISED.has(event.code)) {
        this.stopped = true;
        this.onStatus({ state: "unauthorised", attempt: this.attempt });
        return;
      }
      this.scheduleRetry();
    };
  }

  scheduleRetry() {
    if (this.stopped) return;
    // Exponential backoff with jitter, so a restarted server is not hit by every screen at once.
    const base = Math.min(this.maxDelayMs, this.minDelayMs * 2 ** this.attempt);
    const delay = Math.round(base * (0.75 + Math.random() * 0.5));
    this.attempt += 1;
    const state = navigator.onLine === false ? "offline" : "retrying";
    this.onStatus({ state, attempt: this.attempt, retryInMs: delay });
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), delay);
  }
}

/** The websocket URL for a path on this page's origin. */
export function socketUrl(path, params) {
  const url = new URL(path, window.location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  for (const [key, value] of Object.entries(params || {})) url.searchParams.set(key, value);
  return url.toString();
}
