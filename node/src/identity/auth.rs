//! Authentication of every request on the client ports, as axum middleware
//! (the gRPC gateway is an axum router too): the REST API answers 401 with
//! a problem and a `WWW-Authenticate` challenge, the gRPC gateway
//! `UNAUTHENTICATED`, the management port a plain 401 (503 and
//! `UNAVAILABLE` when the identity provider's keys cannot be fetched).
//! Bearer tokens are checked by [`super::oidc`].
//!
//! Basic credentials are checked against the users of the replicated state
//! ([`Directory`]). Argon2 is slow by design, so a successful check is
//! remembered as the SHA-256 of the password beside the hash it matched:
//! the next request with the same password costs a SHA-256, and a changed
//! or deleted user is checked afresh. At most [`MAX_CONCURRENT_HASHES`]
//! Argon2 checks run at once, on the blocking threads, so wrong passwords
//! cannot take the CPU from the partitions.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use thiserror::Error;
use tokio::sync::Semaphore;

use super::authorize::Need;
use super::authorize::PROCESS_DEFINITION;
use super::caller::{Caller, CALLER};
use super::config::{Authentication, SecurityConfig};
use super::scope::Scope;
use super::users::{verify_password, Directory};
use engine::access::{Claims, Grant, Owners, OWNER_CLIENT, OWNER_USER};
use engine::identity::Identity;

/// Argon2 checks that may run at once.
pub const MAX_CONCURRENT_HASHES: usize = 2;
/// Management paths that answer without credentials when
/// `security.public_health_and_metrics` is set.
pub const PUBLIC_MANAGEMENT_PATHS: [&str; 4] = ["/health", "/ready", "/startup", "/metrics"];

/// Who made a request; in the request's extensions once authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// `security.authentication = "none"`.
    Anonymous,
    /// A user (basic authentication, or a token's username claim).
    User(String),
    /// An application with client credentials (a token's client id claim).
    Client(String),
}

impl Principal {
    /// The name to show (`anonymous` without authentication).
    pub fn name(&self) -> &str {
        match self {
            Principal::Anonymous => "anonymous",
            Principal::User(name) | Principal::Client(name) => name,
        }
    }

    /// Its owner type and id, unless anonymous.
    pub fn owner(&self) -> Option<(&'static str, &str)> {
        match self {
            Principal::Anonymous => None,
            Principal::User(name) => Some((OWNER_USER, name)),
            Principal::Client(id) => Some((OWNER_CLIENT, id)),
        }
    }
}

/// The claims of the bearer token a request was authenticated with; in
/// the request's extensions beside the [`Principal`] (mapping rules match
/// them).
#[derive(Debug, Clone, PartialEq)]
pub struct TokenClaims(pub Arc<Claims>);

/// Everything `principal` acts as in `identity` (see
/// [`Identity::owners`]); empty for anonymous callers.
pub fn owners_of(
    identity: &Identity,
    principal: &Principal,
    claims: Option<&TokenClaims>,
) -> Owners {
    principal
        .owner()
        .map_or_else(Owners::new, |(owner_type, id)| {
            identity.owners(owner_type, id, claims.map(|c| &*c.0))
        })
}

/// Why a request is not authenticated; the text goes to the client.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum AuthError {
    /// No `Authorization` header.
    #[error("no credentials: this broker requires an `authorization: {0}` header")]
    Missing(&'static str),
    /// A header that is not `Basic <base64 of name:password>`.
    #[error("the authorization header is not `Basic` followed by the base64 of name:password")]
    Malformed,
    /// Unknown user or wrong password (not told apart).
    #[error("invalid credentials: no such user, or a wrong password")]
    Invalid,
    /// A bearer token that is not valid here.
    #[error("invalid bearer token: {0}")]
    BadToken(String),
    /// The identity provider's keys cannot be fetched.
    #[error("the identity provider is unavailable: {0}")]
    Unavailable(String),
}

impl AuthError {
    /// Whether the client may try again unchanged (the provider is down).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, AuthError::Unavailable(_))
    }
}

/// A password that matched a user's stored hash.
#[derive(Debug)]
struct Verified {
    hash: String,
    password_sha256: [u8; 32],
}

/// Checks the credentials of requests.
#[derive(Debug)]
pub struct Authenticator {
    config: SecurityConfig,
    oidc: Option<super::oidc::Oidc>,
    directory: Arc<Directory>,
    verified: Mutex<HashMap<String, Verified>>,
    hashing: Semaphore,
}

impl Authenticator {
    /// Checks requests as `config` says, against `directory`'s users.
    pub fn new(config: &SecurityConfig, directory: Arc<Directory>) -> Authenticator {
        Authenticator {
            config: config.clone(),
            oidc: (config.authentication == Authentication::Oidc)
                .then(|| super::oidc::Oidc::new(config)),
            directory,
            verified: Mutex::new(HashMap::new()),
            hashing: Semaphore::new(MAX_CONCURRENT_HASHES),
        }
    }

    /// Who sent `headers`, and the claims of its token.
    pub async fn authenticate(
        &self,
        headers: &HeaderMap,
    ) -> Result<(Principal, Option<TokenClaims>), AuthError> {
        let value = match self.config.authentication {
            Authentication::None => return Ok((Principal::Anonymous, None)),
            scheme => headers
                .get(header::AUTHORIZATION)
                .ok_or(AuthError::Missing(challenge_scheme(scheme)))?,
        };
        if let Some(oidc) = &self.oidc {
            let token = bearer_token(value).ok_or_else(|| {
                AuthError::BadToken("the authorization header is not `Bearer <JWT>`".into())
            })?;
            let (principal, claims) = oidc.verify(token).await?;
            return Ok((principal, Some(TokenClaims(Arc::new(claims)))));
        }
        let (name, password) = basic_credentials(value).ok_or(AuthError::Malformed)?;
        let user = self.directory.user(&name).ok_or(AuthError::Invalid)?;
        let digest: [u8; 32] = Sha256::digest(password.as_bytes()).into();
        if self.remembered(&name, &user.password, &digest) {
            return Ok((Principal::User(name), None));
        }
        let _permit = self
            .hashing
            .acquire()
            .await
            .expect("the semaphore is never closed");
        let hash = user.password.clone();
        let matches = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
            .await
            .unwrap_or(false);
        if !matches {
            return Err(AuthError::Invalid);
        }
        self.verified.lock().expect("never poisoned").insert(
            name.clone(),
            Verified {
                hash: user.password,
                password_sha256: digest,
            },
        );
        Ok((Principal::User(name), None))
    }

    fn remembered(&self, name: &str, hash: &str, digest: &[u8; 32]) -> bool {
        let verified = self.verified.lock().expect("never poisoned");
        verified
            .get(name)
            .is_some_and(|v| v.hash == hash && bool::from(v.password_sha256.ct_eq(digest)))
    }
}

/// The authorization scheme clients of `authentication` use.
fn challenge_scheme(authentication: Authentication) -> &'static str {
    match authentication {
        Authentication::Oidc => "Bearer",
        _ => "Basic",
    }
}

/// The token of a `Bearer` authorization header.
fn bearer_token(value: &HeaderValue) -> Option<&str> {
    let (scheme, token) = value.to_str().ok()?.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Name and password of a `Basic` authorization header.
fn basic_credentials(value: &HeaderValue) -> Option<(String, String)> {
    let value = value.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (name, password) = text.split_once(':')?;
    Some((name.to_string(), password.to_string()))
}

/// Why a request is not served.
#[derive(Debug)]
enum Refusal {
    /// Who sent it is not known (or cannot be checked now).
    Unauthenticated(AuthError),
    /// Its sender lacks the permission it needs; the text says which.
    Forbidden(String),
}

impl Authenticator {
    /// The resources of `need`'s type on which `principal` holds its
    /// permission (all, without authentication or with authorizations
    /// off).
    pub fn grant(&self, principal: &Principal, claims: Option<&TokenClaims>, need: Need) -> Grant {
        if !self.config.authorizes() || *principal == Principal::Anonymous {
            return Grant::All;
        }
        let identity = self.directory.identity();
        let owners = owners_of(&identity, principal, claims);
        identity.grant(&owners, need.0, need.1)
    }
}

impl Authenticator {
    /// The tenants of an authenticated caller, under multi-tenancy.
    fn tenants(
        &self,
        principal: &Principal,
        claims: Option<&TokenClaims>,
    ) -> Option<Arc<[String]>> {
        if !self.config.multi_tenancy || *principal == Principal::Anonymous {
            return None;
        }
        let identity = self.directory.identity();
        let owners = owners_of(&identity, principal, claims);
        Some(identity.tenants_of(&owners).into())
    }
}

/// What an operation needs: a permission, and whether it checks grants
/// on single resources itself (a [`Scope`] then comes with a grant that
/// covers some resources only).
#[derive(Debug, Clone, Copy)]
struct Requirement {
    need: Need,
    by_resource: bool,
}

/// Runs `next` for an authenticated request (its [`Principal`] in the
/// extensions) whose sender holds what it needs, else answers with
/// `refuse(why)`.
async fn guarded(
    auth: &Authenticator,
    mut request: Request,
    next: Next,
    requirement: Option<Requirement>,
    refuse: impl FnOnce(Refusal) -> Response,
) -> Response {
    let (principal, claims) = match auth.authenticate(request.headers()).await {
        Ok(caller) => caller,
        Err(e) => return refuse(Refusal::Unauthenticated(e)),
    };
    let mut caller = Caller::default();
    if let Some(Requirement { need, by_resource }) = requirement {
        match auth.grant(&principal, claims.as_ref(), need) {
            Grant::All => {}
            Grant::Only(ids) if by_resource => {
                if need.0 == PROCESS_DEFINITION {
                    caller.processes = Some(ids.iter().cloned().collect());
                }
                request.extensions_mut().insert(Scope {
                    resource_type: need.0,
                    permission: need.1,
                    ids: Arc::new(ids),
                });
            }
            _ => {
                return refuse(Refusal::Forbidden(format!(
                    "Insufficient permissions: '{}' holds no {} permission on every {} (an authorization with resource id '*', of its own or of its roles, groups or mapping rules)",
                    principal.name(),
                    need.1,
                    need.0
                )))
            }
        }
    }
    caller.tenants = auth.tenants(&principal, claims.as_ref());
    request.extensions_mut().insert(principal);
    if let Some(claims) = claims {
        request.extensions_mut().insert(claims);
    }
    if caller.is_unrestricted() {
        next.run(request).await
    } else {
        CALLER.scope(caller, next.run(request)).await
    }
}

/// Middleware of the REST API: 401 with a problem and a challenge, 403
/// without the permission.
pub async fn rest(
    State(auth): State<Arc<Authenticator>>,
    request: Request,
    next: Next,
) -> Response {
    use crate::rest::problem::Problem;
    let scheme = auth.config.authentication;
    // Operate and Tasklist mark their calls: they show their own login, so
    // a 401 for them carries no challenge that would open the browser's.
    let from_app = request
        .headers()
        .get("x-requested-with")
        .is_some_and(|v| v == "XMLHttpRequest");
    let requirement = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .and_then(|path| {
            let template = path.as_str();
            let need = super::authorize::rest(request.method(), template)?;
            let by_resource = super::authorize::rest_by_resource(request.method(), template);
            Some(Requirement { need, by_resource })
        });
    guarded(&auth, request, next, requirement, |refusal| match refusal {
        Refusal::Unauthenticated(e) if e.is_unavailable() => Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "UNAVAILABLE",
            e.to_string(),
        )
        .into_response(),
        Refusal::Unauthenticated(e) => {
            let problem = Problem::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", e.to_string())
                .into_response();
            if from_app {
                problem
            } else {
                challenge(problem, scheme)
            }
        }
        Refusal::Forbidden(why) => {
            Problem::new(StatusCode::FORBIDDEN, "FORBIDDEN", why).into_response()
        }
    })
    .await
}

/// Middleware of the gRPC gateway: `UNAUTHENTICATED`, or
/// `PERMISSION_DENIED` without the permission.
pub async fn grpc(
    State(auth): State<Arc<Authenticator>>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    let requirement = super::authorize::grpc(path).map(|need| Requirement {
        need,
        by_resource: super::authorize::grpc_by_resource(path),
    });
    guarded(&auth, request, next, requirement, |refusal| {
        let status = match refusal {
            Refusal::Unauthenticated(e) if e.is_unavailable() => {
                tonic::Status::unavailable(e.to_string())
            }
            Refusal::Unauthenticated(e) => tonic::Status::unauthenticated(e.to_string()),
            Refusal::Forbidden(why) => tonic::Status::permission_denied(why),
        };
        status.into_http::<axum::body::Body>().into_response()
    })
    .await
}

/// Middleware of the management port: health and metrics may be public;
/// the rest needs credentials, and reading or changing the cluster the
/// SYSTEM permission (admins).
pub async fn management(
    State(auth): State<Arc<Authenticator>>,
    request: Request,
    next: Next,
) -> Response {
    let public = auth.config.public_health_and_metrics
        && PUBLIC_MANAGEMENT_PATHS.contains(&request.uri().path());
    if public {
        return next.run(request).await;
    }
    let scheme = auth.config.authentication;
    let requirement = Some(Requirement {
        need: super::authorize::management(request.method()),
        by_resource: false,
    });
    guarded(&auth, request, next, requirement, |refusal| match refusal {
        Refusal::Unauthenticated(e) => {
            let status = if e.is_unavailable() {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::UNAUTHORIZED
            };
            challenge((status, format!("{e}\n")).into_response(), scheme)
        }
        Refusal::Forbidden(why) => (StatusCode::FORBIDDEN, format!("{why}\n")).into_response(),
    })
    .await
}

/// Adds the `WWW-Authenticate` challenge of `authentication` to a 401.
fn challenge(mut response: Response, authentication: Authentication) -> Response {
    if response.status() == StatusCode::UNAUTHORIZED {
        let value = match authentication {
            Authentication::Oidc => "Bearer realm=\"waggle\"",
            _ => "Basic realm=\"waggle\", charset=\"UTF-8\"",
        };
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(value));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::identity::{Identity, UserRecord};

    fn header(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        headers
    }

    fn basic(name: &str, password: &str) -> HeaderMap {
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{name}:{password}"));
        header(&format!("Basic {encoded}"))
    }

    fn with_demo(password: &str) -> (Arc<Directory>, Authenticator) {
        let directory = Arc::new(Directory::default());
        let mut identity = Identity::default();
        identity.users.insert(
            "demo".into(),
            UserRecord {
                username: "demo".into(),
                password: super::super::users::hash_password(password),
                ..UserRecord::default()
            },
        );
        directory.publish(1, &identity);
        let config = SecurityConfig {
            authentication: Authentication::Basic,
            ..SecurityConfig::default()
        };
        let auth = Authenticator::new(&config, Arc::clone(&directory));
        (directory, auth)
    }

    #[tokio::test]
    async fn basic_credentials_of_a_stored_user_pass() {
        let (directory, auth) = with_demo("pw:with:colons");
        let ok = Ok((Principal::User("demo".into()), None));
        assert_eq!(
            auth.authenticate(&basic("demo", "pw:with:colons")).await,
            ok
        );
        // remembered, and still checked against the password
        assert_eq!(
            auth.authenticate(&basic("demo", "pw:with:colons")).await,
            ok
        );
        assert_eq!(
            auth.authenticate(&basic("demo", "wrong")).await,
            Err(AuthError::Invalid)
        );
        assert_eq!(
            auth.authenticate(&basic("nobody", "pw:with:colons")).await,
            Err(AuthError::Invalid)
        );
        assert_eq!(
            auth.authenticate(&HeaderMap::new()).await,
            Err(AuthError::Missing("Basic"))
        );
        for bad in ["Bearer abc", "Basic !!!", "Basic ZGVtbw=="] {
            assert_eq!(
                auth.authenticate(&header(bad)).await,
                Err(AuthError::Malformed),
                "{bad}"
            );
        }
        // A deleted user is refused although its password was remembered.
        directory.publish(1, &Identity::default());
        assert_eq!(
            auth.authenticate(&basic("demo", "pw:with:colons")).await,
            Err(AuthError::Invalid)
        );
    }

    #[tokio::test]
    async fn a_changed_password_is_checked_afresh() {
        let (directory, auth) = with_demo("old");
        assert!(auth.authenticate(&basic("demo", "old")).await.is_ok());
        let mut identity = Identity::default();
        identity.users.insert(
            "demo".into(),
            UserRecord {
                username: "demo".into(),
                password: super::super::users::hash_password("new"),
                ..UserRecord::default()
            },
        );
        directory.publish(1, &identity);
        assert_eq!(
            auth.authenticate(&basic("demo", "old")).await,
            Err(AuthError::Invalid)
        );
        assert!(auth.authenticate(&basic("demo", "new")).await.is_ok());
    }

    #[tokio::test]
    async fn without_authentication_everyone_is_anonymous() {
        let auth = Authenticator::new(&SecurityConfig::default(), Arc::default());
        assert_eq!(
            auth.authenticate(&HeaderMap::new()).await,
            Ok((Principal::Anonymous, None))
        );
    }
}
