// Signing in: the OAuth 2.0 authorization code flow with PKCE, as a single-page app does it with Entra ID. The access
// token lives in sessionStorage (gone when the tab closes) and goes out only as the Authorization header.
const TOKEN = "riposte.token";
const PENDING = "riposte.signin";

function b64url(bytes) {
  return btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function redirectUri() {
  return `${location.origin}/api/console/`;
}

export async function signIn(config) {
  const verifier = b64url(crypto.getRandomValues(new Uint8Array(32)));
  const state = b64url(crypto.getRandomValues(new Uint8Array(16)));
  const challenge = b64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
  sessionStorage.setItem(PENDING, JSON.stringify({ verifier, state, back: location.hash }));
  const query = new URLSearchParams({
    client_id: config.clientId, response_type: "code", redirect_uri: redirectUri(), scope: config.scope,
    state, code_challenge: challenge, code_challenge_method: "S256", response_mode: "query",
  });
  location.assign(`${config.authorizeEndpoint}?${query}`);
}

// Back from the identity platform with ?code=...: trade it for a token, then clean the address bar.
export async function completeSignIn(config) {
  const params = new URLSearchParams(location.search);
  if (!params.has("code") && !params.has("error")) return null;
  const pending = JSON.parse(sessionStorage.getItem(PENDING) || "{}");
  sessionStorage.removeItem(PENDING);
  history.replaceState(null, "", redirectUri() + (pending.back || ""));
  if (params.has("error")) throw new Error(`Sign-in failed: ${params.get("error_description") || params.get("error")}`);
  if (!pending.state || params.get("state") !== pending.state) throw new Error("Sign-in failed: the state does not match.");
  const response = await fetch(config.tokenEndpoint, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "authorization_code", code: params.get("code"), redirect_uri: redirectUri(),
      client_id: config.clientId, code_verifier: pending.verifier, scope: config.scope,
    }),
  });
  const body = await response.json();
  if (!response.ok) throw new Error(`Sign-in failed: ${body.error_description || body.error || response.status}`);
  sessionStorage.setItem(TOKEN, body.access_token);
  return body.access_token;
}

export function token() {
  const value = sessionStorage.getItem(TOKEN);
  const claims = value ? decode(value) : null;
  if (!claims || claims.exp * 1000 < Date.now() + 30_000) return null;
  return value;
}

export function signOut() {
  sessionStorage.removeItem(TOKEN);
}

// Only to show who is signed in and to explain a disabled button: Riposte validates the token on every call.
export function decode(value) {
  try {
    const part = value.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(part));
  } catch {
    return null;
  }
}

export function me() {
  const value = token();
  const claims = value ? decode(value) : null;
  if (!claims) return null;
  return {
    oid: claims.oid || "", name: claims.preferred_username || claims.upn || claims.name || "",
    roles: Array.isArray(claims.roles) ? claims.roles : [],
  };
}
