// HTTP client and token keeping.
//
// Where the tokens live, and why:
// - The access token (15 min) is kept only in this module's memory. It never touches disk
//   and dies with the tab.
// - The refresh token must survive a reload, and the server offers no cookie sessions (an
//   httpOnly cookie would be out of reach of scripts, which is safer), so it is kept in
//   localStorage. Any script running on this origin could read it, so the page loads no
//   third-party code, its CSP allows only same-origin scripts, and it never puts received
//   text into innerHTML. The server rotates refresh tokens and revokes the whole family when
//   a spent one is presented, so a stolen copy stops working as soon as either side uses it.

const REFRESH_KEY = "mathia.refresh_token";
// Refresh a minute (or a quarter of the lifetime, if shorter) before the access token
// expires, so requests never race the expiry.
const refreshMargin = (lifetimeMs) => Math.min(60_000, lifetimeMs / 4);

class ApiError extends Error {
  constructor(status, detail, extra) {
    super(describe(status, detail, extra));
    this.status = status;
    this.detail = detail;
    this.extra = extra;
  }
}

/** A sentence a person can act on, from a Litestar error body. */
function describe(status, detail, extra) {
  const parts = [detail || `Request failed (HTTP ${status})`];
  // Validation errors list the offending fields in `extra`.
  if (Array.isArray(extra)) {
    for (const e of extra) if (e?.message) parts.push(e.key ? `${e.key}: ${e.message}` : e.message);
  }
  if (status === 0) return "Cannot reach the server. Check your connection and try again.";
  if (status === 429) parts.push("Please wait a moment and try again.");
  return parts.join(" — ");
}

let access = null; // {token, expiresAt}
let user = null;
let refreshTimer = null;
let inflight = null;
const listeners = new Set();

/** `fn(user | null)` runs when the user signs in or out (or the session is lost). */
export function onAuthChange(fn) {
  listeners.add(fn);
}

const tokenListeners = new Set();

/** `fn(accessToken)` runs whenever a new access token arrives (sign-in or refresh). */
export function onAccessToken(fn) {
  tokenListeners.add(fn);
}

function storedRefresh() {
  return localStorage.getItem(REFRESH_KEY);
}

function accept(pair) {
  const lifetime = pair.expires_in * 1000;
  access = { token: pair.access_token, expiresAt: Date.now() + lifetime, margin: refreshMargin(lifetime) };
  localStorage.setItem(REFRESH_KEY, pair.refresh_token);
  clearTimeout(refreshTimer);
  const due = lifetime - access.margin;
  refreshTimer = setTimeout(() => refresh().catch(() => {}), due);
  if (pair.user) user = pair.user;
  tokenListeners.forEach((fn) => fn(access.token));
}

function signedOut() {
  const had = user !== null;
  access = null;
  user = null;
  clearTimeout(refreshTimer);
  localStorage.removeItem(REFRESH_KEY);
  if (had) listeners.forEach((fn) => fn(null));
}

async function request(method, path, { body, token, form } = {}) {
  const headers = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  let payload;
  if (form) payload = form;
  else if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, { method, headers, body: payload });
  } catch {
    throw new ApiError(0, null);
  }
  if (response.status === 204) return null;
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { detail: text };
  }
  if (!response.ok) throw new ApiError(response.status, data?.detail, data?.extra);
  return data;
}

/**
 * Trade the stored refresh token for a new pair. One refresh at a time, across tabs too:
 * two tabs presenting the same token would look like theft and revoke the session.
 */
export function refresh() {
  inflight ??= withLock(async () => {
    const token = storedRefresh(); // read inside the lock: another tab may have rotated it
    if (!token) throw new ApiError(401, "Not signed in");
    try {
      accept(await request("POST", "/api/auth/refresh", { body: { refresh_token: token } }));
    } catch (err) {
      if (err.status === 401) signedOut();
      throw err;
    }
  }).finally(() => {
    inflight = null;
  });
  return inflight;
}

function withLock(fn) {
  return navigator.locks ? navigator.locks.request("mathia-refresh", fn) : fn();
}

/** A valid access token, refreshed first when it is about to expire. */
export async function accessToken() {
  if (!access || access.expiresAt - Date.now() < access.margin / 2) await refresh();
  return access.token;
}

/** Call the API as the signed-in user; a 401 triggers one refresh and one retry. */
export async function api(method, path, body, { form } = {}) {
  const token = await accessToken();
  try {
    return await request(method, path, { body, form, token });
  } catch (err) {
    if (err.status !== 401) throw err;
    await refresh();
    return request(method, path, { body, form, token: access.token });
  }
}

async function signIn(path, body) {
  accept(await request("POST", path, { body }));
  listeners.forEach((fn) => fn(user));
  return user;
}

export const register = (body) => signIn("/api/auth/register", body);
export const login = (body) => signIn("/api/auth/login", body);

/** Restore the session after a reload from the stored refresh token; null when there is none. */
export async function resume() {
  if (!storedRefresh()) return null;
  try {
    await refresh();
    user = await api("GET", "/api/me");
  } catch (err) {
    if (err.status === 401) return null;
    throw err;
  }
  listeners.forEach((fn) => fn(user));
  return user;
}

export async function logout() {
  const token = storedRefresh();
  if (token) await request("POST", "/api/auth/logout", { body: { refresh_token: token }, token: access?.token }).catch(() => {});
  signedOut();
}

/**
 * GET an optional feature's endpoint. Resolves to null when the server does not have the
 * feature yet (404/405), so its panel can stay hidden.
 */
export async function probe(path) {
  try {
    return await api("GET", path);
  } catch (err) {
    if (err.status === 404 || err.status === 405) return null;
    throw err;
  }
}
