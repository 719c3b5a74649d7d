// Sign-in and authenticated requests, shared by both pages. The token lives in sessionStorage:
// it survives a reload of the tab but not closing it, and each page keeps its own sign-in.

export class ApiError extends Error {
  constructor(status, error, detail) {
    super(detail || error || `HTTP ${status}`);
    this.status = status;
    this.error = error;
    this.detail = detail;
  }
}

export class Session {
  /** @param {string} storageKey  one per page, e.g. "screenpop.agent" */
  constructor(storageKey) {
    this.storageKey = storageKey;
    this.onExpired = () => {};
  }

  get current() {
    try {
      return JSON.parse(sessionStorage.getItem(this.storageKey) || "null");
    } catch {
      return null;
    }
  }

  get token() {
    return this.current ? this.current.token : null;
  }

  async signIn(username, password) {
    const body = await this.request("POST", "/api/auth/login", { username, password }, { auth: false });
    const session = {
      token: body.token,
      username: body.username || username,
      role: body.role || "agent",
      queues: body.queues || [],
    };
    sessionStorage.setItem(this.storageKey, JSON.stringify(session));
    return session;
  }

  signOut() {
    sessionStorage.removeItem(this.storageKey);
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
      throw new ApiError(0, "network", "The server cannot be reached. Check your connection.");
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
        typeof detail === "string" ? detail : `The server answered ${response.status}.`,
      );
    }
    return data;
  }
}

/**
 * Wire a sign-in form (fields #username and #password, an error paragraph) to a session.
 * `onSubmitGesture` runs synchronously inside the click, where browsers allow permission prompts.
 */
export function wireSignIn({ form, error, session, requireRole, onSignedIn, onSubmitGesture }) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (onSubmitGesture) onSubmitGesture();
    const button = form.querySelector("button[type=submit]");
    const data = new FormData(form);
    error.textContent = "";
    button.disabled = true;
    try {
      const signed = await session.signIn(String(data.get("username")).trim(), String(data.get("password")));
      if (requireRole && !requireRole(signed.role)) {
        session.signOut();
        error.textContent = `${signed.username} is not allowed here (role: ${signed.role}).`;
        return;
      }
      form.reset();
      onSignedIn(signed);
    } catch (err) {
      error.textContent =
        err.status === 401 ? "Wrong username or password." : err.message || "Sign-in failed.";
    } finally {
      button.disabled = false;
    }
  });
}
