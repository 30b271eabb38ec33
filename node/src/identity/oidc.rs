//! JWT bearer tokens of an OpenID provider (`security.authentication =
//! "oidc"`): the signature against the issuer's keys (JWKS), the issuer,
//! the audience, the expiry and not-before with a clock skew.
//!
//! The keys come from `oidc_jwks_uri`, or from the `jwks_uri` of the
//! issuer's discovery document. They are fetched at the first token, again
//! when a token names a key id that is not among them (the provider
//! rotated its keys; fetches are at least [`MIN_REFETCH`] apart), and
//! again when they are older than [`MAX_KEY_AGE`], so a key the provider
//! dropped stops working. A token whose key cannot be fetched is answered "unavailable",
//! not "unauthenticated": the client did nothing wrong.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{decode, decode_header, errors::ErrorKind, Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

use super::auth::{AuthError, Principal};
use super::config::SecurityConfig;

/// Least time between two fetches of the keys.
pub const MIN_REFETCH: Duration = Duration::from_secs(1);
/// Keys older than this are fetched again before they are used.
pub const MAX_KEY_AGE: Duration = Duration::from_secs(300);
/// Longest wait for the provider.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Signature algorithms accepted: asymmetric ones only, so that a public
/// key can never serve as an HMAC secret.
const ALGORITHMS: [Algorithm; 8] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
];

/// The provider's keys, by key id, ready to verify with.
struct Keys {
    by_id: HashMap<String, Arc<DecodingKey>>,
    fetched: Option<Instant>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("ids", &self.by_id.keys().collect::<Vec<_>>())
            .field("fetched", &self.fetched)
            .finish()
    }
}

/// Checks bearer tokens.
#[derive(Debug)]
pub struct Oidc {
    issuer: String,
    jwks_uri: String,
    audiences: Vec<String>,
    username_claim: String,
    client_id_claim: String,
    leeway_s: u64,
    http: reqwest::Client,
    keys: tokio::sync::RwLock<Keys>,
    fetching: tokio::sync::Mutex<()>,
}

/// The client that fetches the provider's discovery document and keys: it
/// trusts the system's CA certificates. A host without them (a minimal
/// install) gets a client that can reach only a provider over plain HTTP, and
/// an error in the log naming the fix, rather than a broker that does not
/// start.
fn http_client(issuer: &str) -> reqwest::Client {
    let builder = || reqwest::Client::builder().timeout(FETCH_TIMEOUT);
    builder().build().unwrap_or_else(|e| {
        tracing::error!(
            "cannot load the system's CA certificates ({e}): HTTPS to the OpenID provider \
             {issuer} fails until they are installed (the ca-certificates package)"
        );
        builder()
            .tls_certs_only([])
            .build()
            .expect("an HTTP client without roots builds")
    })
}

impl Oidc {
    /// A checker for `config`'s provider.
    pub fn new(config: &SecurityConfig) -> Oidc {
        Oidc {
            issuer: config.oidc_issuer_uri.clone(),
            jwks_uri: config.oidc_jwks_uri.clone(),
            audiences: config.oidc_audiences.clone(),
            username_claim: config.oidc_username_claim.clone(),
            client_id_claim: config.oidc_client_id_claim.clone(),
            leeway_s: config.oidc_clock_skew_ms.div_ceil(1000),
            http: http_client(&config.oidc_issuer_uri),
            keys: tokio::sync::RwLock::new(Keys {
                by_id: HashMap::new(),
                fetched: None,
            }),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    /// Who `token` names, and its claims, if it is valid.
    pub async fn verify(&self, token: &str) -> Result<(Principal, Map<String, Value>), AuthError> {
        let header = decode_header(token)
            .map_err(|e| AuthError::BadToken(format!("the bearer token is not a JWT ({e})")))?;
        if !ALGORITHMS.contains(&header.alg) {
            return Err(AuthError::BadToken(format!(
                "the token is signed with {:?}; accepted are RS, PS and ES algorithms",
                header.alg
            )));
        }
        let kid = header.kid.unwrap_or_default();
        let key = self.key(&kid, token).await?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&self.audiences);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.leeway = self.leeway_s;
        validation.validate_nbf = true;
        let claims = decode::<Map<String, Value>>(token, &key, &validation)
            .map_err(|e| {
                AuthError::BadToken(match e.kind() {
                    ErrorKind::ExpiredSignature => "the token has expired".to_string(),
                    ErrorKind::ImmatureSignature => "the token is not valid yet (nbf)".into(),
                    ErrorKind::InvalidAudience => format!(
                        "the token is not for this cluster: its audience is none of {}",
                        self.audiences.join(", ")
                    ),
                    ErrorKind::InvalidIssuer => {
                        format!("the token was not issued by {}", self.issuer)
                    }
                    ErrorKind::InvalidSignature => "the token's signature does not verify".into(),
                    ErrorKind::MissingRequiredClaim(claim) => {
                        format!("the token has no '{claim}' claim")
                    }
                    other => format!("the token is invalid ({other:?})"),
                })
            })?
            .claims;
        let text = |claim: &str| claims.get(claim).and_then(Value::as_str).map(String::from);
        let client = Some(&self.client_id_claim)
            .filter(|c| !c.is_empty())
            .and_then(|c| text(c));
        let principal = match client {
            Some(client) => Some(Principal::Client(client)),
            None => text(&self.username_claim).map(Principal::User),
        };
        principal.map(|p| (p, claims)).ok_or_else(|| {
            AuthError::BadToken(format!(
                "the token names no user ('{}') or client ('{}')",
                self.username_claim, self.client_id_claim
            ))
        })
    }

    /// The key `kid` of `token`, fetching the keys when it is unknown or
    /// they are old. Requests for known keys never wait for a fetch;
    /// fetches run one at a time, at most one a [`MIN_REFETCH`].
    async fn key(&self, kid: &str, token: &str) -> Result<Arc<DecodingKey>, AuthError> {
        if let Some(key) = self.cached(kid).await {
            return Ok(key);
        }
        // Tokens of other issuers are refused before keys are fetched for
        // them, so they cannot make the broker fetch again and again. (The
        // issuer of every token is checked with its signature.)
        if unverified_issuer(token).as_deref() != Some(self.issuer.as_str()) {
            return Err(AuthError::BadToken(format!(
                "the token was not issued by {}",
                self.issuer
            )));
        }
        let _one_fetch = self.fetching.lock().await;
        // Another request may have fetched while this one waited.
        if let Some(key) = self.cached(kid).await {
            return Ok(key);
        }
        let since = self.keys.read().await.fetched.map(|at| at.elapsed());
        if let Some(since) = since.filter(|s| *s < MIN_REFETCH) {
            tokio::time::sleep(MIN_REFETCH - since).await;
        }
        let by_id = self.fetch().await?;
        *self.keys.write().await = Keys {
            by_id,
            fetched: Some(Instant::now()),
        };
        self.cached(kid).await.ok_or_else(|| {
            AuthError::BadToken(format!(
                "the token is signed with key '{kid}', which {} does not publish",
                self.issuer
            ))
        })
    }

    /// The key `kid` among fresh keys, if it is there.
    async fn cached(&self, kid: &str) -> Option<Arc<DecodingKey>> {
        let keys = self.keys.read().await;
        let fresh = keys.fetched.is_some_and(|at| at.elapsed() < MAX_KEY_AGE);
        fresh.then(|| keys.by_id.get(kid).cloned()).flatten()
    }

    /// The provider's keys, by id; keys that cannot verify are left out
    /// (and logged).
    async fn fetch(&self) -> Result<HashMap<String, Arc<DecodingKey>>, AuthError> {
        let unavailable = |what: String| AuthError::Unavailable(what);
        let jwks_uri = if self.jwks_uri.is_empty() {
            let url = format!(
                "{}/.well-known/openid-configuration",
                self.issuer.trim_end_matches('/')
            );
            let discovery: Value = self.get_json(&url).await.map_err(unavailable)?;
            discovery
                .get("jwks_uri")
                .and_then(Value::as_str)
                .ok_or_else(|| unavailable(format!("{url} names no jwks_uri")))?
                .to_string()
        } else {
            self.jwks_uri.clone()
        };
        let set: JwkSet = self.get_json(&jwks_uri).await.map_err(unavailable)?;
        let mut by_id = HashMap::new();
        for jwk in &set.keys {
            let kid = jwk.common.key_id.clone().unwrap_or_default();
            match DecodingKey::from_jwk(jwk) {
                Ok(key) => {
                    by_id.insert(kid, Arc::new(key));
                }
                Err(e) => tracing::warn!("{jwks_uri}: key '{kid}' is unusable ({e}); skipped"),
            }
        }
        Ok(by_id)
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, String> {
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| format!("cannot reach {url}: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("{url} answered {}", response.status()));
        }
        response
            .json()
            .await
            .map_err(|e| format!("{url} did not answer the JSON expected: {e}"))
    }
}

/// The `iss` claim of `token`, read without checking anything.
fn unverified_issuer(token: &str) -> Option<String> {
    use base64::Engine as _;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: Map<String, Value> = serde_json::from_slice(&bytes).ok()?;
    claims.get("iss")?.as_str().map(String::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_issuer_is_read_from_the_payload() {
        use base64::Engine as _;
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let token = format!(
            "{}.{}.sig",
            b64("{}"),
            b64(r#"{"iss":"http://idp","sub":"a"}"#)
        );
        assert_eq!(unverified_issuer(&token).as_deref(), Some("http://idp"));
        assert_eq!(unverified_issuer("garbage"), None);
        assert_eq!(unverified_issuer("a.!!!.c"), None);
    }
}
