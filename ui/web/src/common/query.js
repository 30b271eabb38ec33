// The query part of the hash (#/path?a=1&b=2): read it, and rewrite it
// without re-rendering the page (history.replaceState fires no hashchange).

/** The parameters of the current hash. */
export function hashQuery() {
  const hash = location.hash.replace(/^#/, "");
  const at = hash.indexOf("?");
  return new URLSearchParams(at < 0 ? "" : hash.slice(at + 1));
}

/** Makes `params` ([name, value] pairs) the query of the current hash path. */
export function setHashQuery(params) {
  const path = location.hash.replace(/^#/, "").split("?")[0] || "/";
  const query = new URLSearchParams(params).toString();
  history.replaceState(null, "", `#${path}${query ? `?${query}` : ""}`);
}
