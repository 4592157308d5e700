// The data layer. Both hosts answer the same paths with the same JSON; they
// differ only in how a request is authenticated (the app: the session token
// it handed the page when its printed link was opened; the relay: a bearer
// token typed into the sign-in form), both sent as `Authorization: Bearer`,
// and in how the page hears of changes (the app: server-sent events, read
// with fetch so that they carry the token; the relay: a long poll).

export const host = document.documentElement.dataset.host === "relay" ? "relay" : "app";
export const readOnly = host === "relay";

const TOKEN_KEY = "tickets-token";
const SESSION_KEY = "tickets-session";

/// The app's session token. The page that the printed link opens carries
/// it in a <meta>; it is kept in localStorage, which the browser keeps per
/// origin (host and port), so no other program on this machine receives it
/// (a cookie would go to every port of 127.0.0.1), and it reaches the
/// other tabs of this app. The link's one-time secret leaves the address
/// bar at once.
function appSession() {
  const meta = document.querySelector('meta[name="tickets-session"]');
  if (meta) {
    const t = meta.getAttribute("content") || "";
    meta.remove();
    localStorage.setItem(SESSION_KEY, t);
    if (location.search) history.replaceState(null, "", "/" + location.hash);
    return t;
  }
  return localStorage.getItem(SESSION_KEY) || "";
}

let token = readOnly ? sessionStorage.getItem(TOKEN_KEY) || "" : appSession();

export function hasToken() {
  return token !== "";
}

export function setToken(t) {
  token = t;
  if (t) sessionStorage.setItem(TOKEN_KEY, t);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/// An error answer: `{error, code, field?}` from either server.
export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error) || `the server answered ${status}`);
    this.status = status;
    this.code = (body && body.code) || "";
    this.field = (body && body.field) || "";
    this.body = body || {};
  }
}

function headers(json) {
  const h = {};
  if (token) h.Authorization = "Bearer " + token;
  if (json) h["Content-Type"] = "application/json";
  return h;
}

async function request(path, { method = "GET", body, signal } = {}) {
  const r = await send(path, { method, body, signal });
  // The app stopped or started again since this page got its session:
  // the app's page says how to get back in.
  if (r.status === 401 && !readOnly) location.replace("/signed-out");
  return r;
}

async function send(path, { method, body, signal }) {
  try {
    return await fetch(path, {
      method,
      headers: headers(body !== undefined),
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
      signal,
    });
  } catch (e) {
    if (e && e.name === "AbortError") throw e;
    throw new ApiError(0, {
      error: readOnly
        ? "Cannot reach the relay; check the connection and reload."
        : "Cannot reach the app; is `tickets app` still running? Start it again and open the URL it prints.",
      code: "unreachable",
    });
  }
}

/// A JSON request; throws ApiError on any 4xx/5xx or unreadable answer.
export async function api(path, opts = {}) {
  const r = await request(path, opts);
  const text = await r.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!r.ok) throw new ApiError(r.status, data || { error: `the server answered ${r.status} ${r.statusText}`, code: "http" });
  if (data === null && text) throw new ApiError(r.status, { error: "the server's answer was not JSON", code: "bad_answer" });
  if (data === null) return {};
  return data;
}

/// A download: saves the answer's body as a file.
export async function download(path, filename) {
  const r = await request(path);
  if (!r.ok) {
    let body = null;
    try {
      body = await r.json();
    } catch {
      body = null;
    }
    throw new ApiError(r.status, body);
  }
  const blob = await r.blob();
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}

/// Calls `onChange` whenever the data may have changed, and `onSync` with
/// the app's sync status. Returns a function that stops listening.
export function follow(seq, onChange, onSync, onLink) {
  if (!readOnly) {
    // Server-sent events, read with fetch: EventSource cannot send the
    // session token. Reconnects as EventSource would, with a backoff.
    const ctl = new AbortController();
    const dispatch = (block) => {
      let event = "message";
      const data = [];
      for (const line of block.split(/\r?\n/)) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (event === "changed") onChange();
      else if (event === "sync") {
        try {
          onSync(JSON.parse(data.join("\n")));
        } catch {
          /* a malformed event: the next one will do */
        }
      }
    };
    (async () => {
      let delay = 500;
      while (!ctl.signal.aborted) {
        try {
          const r = await request("/v1/events", { signal: ctl.signal });
          if (r.ok && r.body) {
            delay = 500;
            onLink(true);
            onChange();
            const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
            let buf = "";
            for (;;) {
              const { value, done } = await reader.read();
              if (done) break;
              buf += value;
              let end;
              while ((end = buf.search(/\r?\n\r?\n/)) >= 0) {
                dispatch(buf.slice(0, end));
                buf = buf.slice(end).replace(/^\r?\n\r?\n/, "");
              }
            }
          }
        } catch {
          /* the stream broke: reconnect below */
        }
        if (ctl.signal.aborted) return;
        onLink(false);
        await new Promise((res) => setTimeout(res, delay));
        delay = Math.min(delay * 2, 10000);
      }
    })();
    return () => ctl.abort();
  }
  // The relay: a long poll that the relay answers as soon as anything
  // changes (or after a while with the same sequence).
  const ctl = new AbortController();
  (async () => {
    let delay = 500;
    while (!ctl.signal.aborted) {
      try {
        const r = await request("/v1/sync/watch?cursor=" + seq, { signal: ctl.signal });
        if (r.status === 401) {
          onLink(false, "signed-out");
          return;
        }
        const b = await r.json();
        delay = 500;
        onLink(true);
        if (b.seq !== seq) {
          seq = b.seq;
          onChange();
        }
      } catch (e) {
        if (ctl.signal.aborted) return;
        onLink(false);
        await new Promise((res) => setTimeout(res, delay));
        delay = Math.min(delay * 2, 10000);
      }
    }
  })();
  return () => ctl.abort();
}
