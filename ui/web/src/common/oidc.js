// Signing in with OpenID Connect: the authorization code flow with PKCE, as
// the public client the broker names in config.json (security.oidc_ui_*).
// The provider redirects back to this app's page; the access token it gives
// is what every API call then carries.
import { rememberBearer } from "./api.js";

const PENDING = "waggle.oidc.pending";

function base64url(bytes) {
  return btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function random() {
  return base64url(crypto.getRandomValues(new Uint8Array(32)));
}

async function discover(issuer) {
  const url = `${issuer.replace(/\/$/, "")}/.well-known/openid-configuration`;
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url} answered ${response.status}`);
  return response.json();
}

/** This page without query or hash: the redirect URI. */
function redirectUri() {
  return location.origin + location.pathname;
}

/** Leaves for the provider's login; it comes back to this page. */
export async function beginSignIn(config) {
  const provider = await discover(config.issuer);
  const verifier = random();
  const state = random();
  const challenge = base64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
  sessionStorage.setItem(
    PENDING,
    JSON.stringify({ verifier, state, tokenEndpoint: provider.token_endpoint, hash: location.hash }),
  );
  const query = new URLSearchParams({
    response_type: "code",
    client_id: config.clientId,
    redirect_uri: redirectUri(),
    scope: config.scope,
    state,
    code_challenge: challenge,
    code_challenge_method: "S256",
  });
  location.assign(`${provider.authorization_endpoint}?${query}`);
}

/**
 * On the way back from the provider (?code&state, or ?error): trades the
 * code for tokens and cleans the address. Resolves to false when this is
 * no such return; throws what the provider or the token endpoint said.
 */
export async function completeSignIn(config) {
  const params = new URLSearchParams(location.search);
  if (!params.has("code") && !params.has("error")) return false;
  const pending = JSON.parse(sessionStorage.getItem(PENDING) || "null");
  sessionStorage.removeItem(PENDING);
  history.replaceState(null, "", redirectUri() + (pending?.hash || ""));
  if (params.has("error")) {
    throw new Error(`the provider refused the sign-in: ${params.get("error_description") || params.get("error")}`);
  }
  if (!pending || pending.state !== params.get("state")) {
    throw new Error("the sign-in came back with an unknown state: sign in again");
  }
  const response = await fetch(pending.tokenEndpoint, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      code: params.get("code"),
      redirect_uri: redirectUri(),
      client_id: config.clientId,
      code_verifier: pending.verifier,
    }),
  });
  const tokens = await response.json().catch(() => ({}));
  if (!response.ok || !tokens.access_token) {
    throw new Error(`the token endpoint answered ${response.status}: ${tokens.error_description || tokens.error || "no access token"}`);
  }
  rememberBearer(tokens.access_token);
  return true;
}
