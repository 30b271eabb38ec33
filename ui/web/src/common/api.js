// The REST API v2 as the apps use it: the same public operations any other
// client calls, with the signed-in user's credentials. Errors are thrown as
// ApiError carrying the problem (application/problem+json) the broker sent.

const CREDENTIALS = "waggle.authorization";

/** The Authorization header value of the signed-in user, if any. */
export function authorization() {
  return sessionStorage.getItem(CREDENTIALS);
}

/** Keeps `username`'s basic credentials for this browser tab. */
export function rememberBasic(username, password) {
  const bytes = new TextEncoder().encode(`${username}:${password}`);
  sessionStorage.setItem(CREDENTIALS, "Basic " + btoa(String.fromCharCode(...bytes)));
}

/** Keeps an OpenID Connect access token for this browser tab. */
export function rememberBearer(token) {
  sessionStorage.setItem(CREDENTIALS, `Bearer ${token}`);
}

/** Forgets the credentials: the next request that needs them asks again. */
export function forget() {
  sessionStorage.removeItem(CREDENTIALS);
}

export class ApiError extends Error {
  constructor(status, problem, path) {
    super(problem?.detail || problem?.title || `${path} answered ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

/** Listeners told when the broker refuses the credentials (401). */
const unauthorizedListeners = new Set();
export function onUnauthorized(listener) {
  unauthorizedListeners.add(listener);
}

/**
 * Calls `method /v2<path>` with `body` as JSON. Resolves to the parsed JSON
 * answer, the text of a non-JSON answer (BPMN XML), or null for 204. A 401
 * tells the onUnauthorized listeners unless `quiet`.
 */
export async function api(method, path, body, { quiet = false } = {}) {
  // Marks the call as the app's: the broker then answers 401 without a
  // challenge, so the browser shows the app's login, not its own dialog.
  const headers = { Accept: "application/json, text/xml", "X-Requested-With": "XMLHttpRequest" };
  const auth = authorization();
  if (auth) headers.Authorization = auth;
  const init = { method, headers };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(`/v2${path}`, init);
  if (!response.ok) {
    const problem = await response.json().catch(() => null);
    if (response.status === 401 && !quiet) unauthorizedListeners.forEach((l) => l(problem));
    throw new ApiError(response.status, problem, path);
  }
  if (response.status === 204) return null;
  const type = response.headers.get("content-type") || "";
  return type.includes("json") ? response.json() : response.text();
}

/** One page of `POST /v2/<entity>/search`. */
export function search(entity, filter = {}, { sort, limit = 100, after } = {}) {
  const page = after ? { limit, after } : { limit };
  return api("POST", `/${entity}/search`, { filter, sort, page });
}

/** How many `entity` items match `filter`. */
export async function count(entity, filter = {}) {
  const result = await search(entity, filter, { limit: 1 });
  return result.page.totalItems;
}

/** Every item matching `filter`, page by page, at most `max`. */
export async function searchAll(entity, filter = {}, { sort, max = 10000 } = {}) {
  const items = [];
  let after;
  while (items.length < max) {
    const result = await search(entity, filter, { sort, limit: Math.min(1000, max - items.length), after });
    items.push(...result.items);
    after = result.page.endCursor;
    if (!after || result.items.length === 0 || items.length >= result.page.totalItems) break;
  }
  return items;
}
