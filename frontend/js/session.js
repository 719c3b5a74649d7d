// Sign-in and authenticated requests, shared by both pages. One sign-in serves every tab of
// the browser: the token is kept in localStorage until it expires (the token's own "exp"),
// and signing out in one tab signs out the others.

import { t } from "./i18n.js";

const STORAGE_KEY = "screenpop.session";

export class ApiError extends Error {
  constructor(status, error, detail, body = null) {
    super(detail || error || `HTTP ${status}`);
    this.status = status;
    this.error = error;
    this.detail = detail;
    // The whole answer: some refusals carry what to do next (a 409's existing customers).
    this.body = body;
  }
}

/** The token's expiry (ms since epoch) from its payload, or null when it has none. */
function tokenExpiry(token) {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const exp = JSON.parse(atob(payload)).exp;
    return typeof exp === "number" ? exp * 1000 : null;
  } catch {
    return null;
  }
}

export class Session {
  constructor() {
    this.onExpired = () => {};
    this.onChange = () => {};
    // Another tab signed in or out: follow it.
    window.addEventListener("storage", (event) => {
      if (event.key === STORAGE_KEY || event.key === null) this.onChange(this.current);
    });
  }

  get current() {
    let stored;
    try {
      stored = JSON.parse(localStorage.getItem(STORAGE_KEY) || "null");
    } catch {
      stored = null;
    }
    if (!stored || !stored.token) return null;
    if (stored.expires_at && stored.expires_at <= Date.now()) {
      localStorage.removeItem(STORAGE_KEY);
      return null;
    }
    return stored;
  }

  get token() {
    const current = this.current;
    return current ? current.token : null;
  }

  async signIn(username, password) {
    const body = await this.request("POST", "/api/auth/login", { username, password }, { auth: false });
    const session = {
      token: body.token,
      username: body.username || username,
      role: body.role || "agent",
      queues: body.queues || [],
      expires_at: tokenExpiry(body.token),
    };
    localStorage.setItem(STORAGE_KEY, JSON.stringify(session));
    return session;
  }

  signOut() {
    localStorage.removeItem(STORAGE_KEY);
  }

  /** JSON in, JSON out; a non-2xx answer throws ApiError with the server's error and detail. */
  async request(method, path, body, { auth = true } = {}) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (auth && this.token) headers.Authorization = `Bearer ${this.token}`;
    let response;
    try {
      response = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (error) {
      throw new ApiError(0, "network", t("The server cannot be reached. Check your connection."));
    }
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = null;
    }
    if (!response.ok) {
      if (response.status === 401 && auth) this.onExpired();
      const detail = data && (data.detail || data.error);
      throw new ApiError(
        response.status,
        data && data.error,
        typeof detail === "string" ? detail : t("The server answered {status}.", { status: response.status }),
        data,
      );
    }
    return data;
  }
}

/**
 * Wire a sign-in form (fields #username and #password, an error paragraph) to a session.
 * `onSubmitGesture` runs synchronously inside the click, where browsers allow permission prompts.
 * A user whose role `requireRole` refuses is told so; the browser's sign-in stays as it was.
 */
export function wireSignIn({ form, error, session, requireRole, onSignedIn, onSubmitGesture }) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (onSubmitGesture) onSubmitGesture();
    const button = form.querySelector("button[type=submit]");
    const data = new FormData(form);
    error.textContent = "";
    button.disabled = true;
    const before = session.current;
    try {
      const signed = await session.signIn(String(data.get("username")).trim(), String(data.get("password")));
      if (requireRole && !requireRole(signed.role)) {
        if (before) localStorage.setItem(STORAGE_KEY, JSON.stringify(before));
        else session.signOut();
        error.textContent = t("{username} is not allowed here (role: {role}).", signed);
        return;
      }
      form.reset();
      onSignedIn(signed);
    } catch (err) {
      error.textContent = err.status === 401 ? t("Wrong username or password.") : err.message || t("Sign-in failed.");
    } finally {
      button.disabled = false;
    }
  });
}
