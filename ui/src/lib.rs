//! Operate and Tasklist, served on the REST port under `/operate/` and
//! `/tasklist/`. The assets were bundled at build time from `web/` (see
//! `build.rs` and `README.md`) and live in the binary; nothing is loaded
//! from elsewhere at run time. The applications use only the public REST
//! API v2, with the caller's credentials, so the assets themselves are
//! public: the routes take no authentication.

use axum::extract::Path;
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

/// One bundled file.
#[derive(Debug)]
pub struct Asset {
    /// Path below the mount point, such as `operate/app.js`.
    pub path: &'static str,
    /// The file as built.
    pub bytes: &'static [u8],
    /// A quoted strong validator of `bytes`.
    pub etag: &'static str,
}

/// Every file of both applications.
pub static ASSETS: &[Asset] = include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// The applications, each at `/<name>/`.
pub const APPS: [&str; 2] = ["operate", "tasklist"];

/// The asset at `path`, if there is one.
pub fn asset(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}

/// How the applications sign their user in.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Login {
    /// The broker takes requests without credentials.
    #[default]
    None,
    /// A user name and password, sent as basic credentials.
    Basic,
    /// OpenID Connect: the authorization code flow with PKCE at `issuer`,
    /// as the public client `client_id`, asking for `scope`; the access
    /// token is sent as bearer token.
    Oidc {
        /// The issuer URL (its discovery document names the endpoints).
        issuer: String,
        /// The public client registered for the applications.
        client_id: String,
        /// The scopes asked for, space-separated.
        scope: String,
    },
}

impl Login {
    /// `config.json` of each application: what its login needs.
    fn config(&self) -> String {
        let value = match self {
            Login::None => serde_json::json!({"login": "none"}),
            Login::Basic => serde_json::json!({"login": "basic"}),
            Login::Oidc {
                issuer,
                client_id,
                scope,
            } => serde_json::json!({
                "login": "oidc", "issuer": issuer, "clientId": client_id, "scope": scope,
            }),
        };
        value.to_string()
    }

    /// The content security policy of the pages: everything from the
    /// broker's origin only, and requests to the OpenID provider too
    /// (discovery and the token endpoint). bpmn-js and form-js set inline
    /// styles and draw data: URLs.
    fn content_security_policy(&self) -> HeaderValue {
        let provider = match self {
            Login::Oidc { issuer, .. } => origin(issuer).map(|o| format!(" {o}")),
            _ => None,
        };
        HeaderValue::from_str(&format!(
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
             img-src 'self' data:; font-src 'self' data:; connect-src 'self'{}; \
             frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
            provider.unwrap_or_default()
        ))
        .expect("an issuer's origin is ASCII")
    }
}

/// `scheme://host[:port]` of `url`.
fn origin(url: &str) -> Option<&str> {
    let (scheme, rest) = url.split_once("://")?;
    let host = rest.split(['/', '?', '#']).next()?;
    (!host.is_empty() && host.is_ascii()).then(|| &url[..scheme.len() + 3 + host.len()])
}

/// The routes of both applications, signing users in by `login`; `/`
/// leads to Operate.
pub fn router<S: Clone + Send + Sync + 'static>(login: Login) -> Router<S> {
    let policy = login.content_security_policy();
    let config = login.config();
    let mut router = Router::new().route("/", get(|| async { Redirect::temporary("/operate/") }));
    for app in APPS {
        let config = config.clone();
        router = router
            .route(
                &format!("/{app}"),
                get(move || async move { Redirect::permanent(&format!("/{app}/")) }),
            )
            .route(
                &format!("/{app}/"),
                get(move |headers: HeaderMap| async move {
                    serve(&format!("{app}/index.html"), &headers)
                }),
            )
            .route(
                &format!("/{app}/config.json"),
                get(move || async move {
                    (
                        [
                            (header::CONTENT_TYPE, "application/json"),
                            (header::CACHE_CONTROL, "no-store"),
                        ],
                        config,
                    )
                }),
            )
            .route(
                &format!("/{app}/{{file}}"),
                get(
                    move |Path(file): Path<String>, headers: HeaderMap| async move {
                        serve(&format!("{app}/{file}"), &headers)
                    },
                ),
            );
    }
    router.layer(axum::middleware::map_response(
        move |mut response: Response| {
            let policy = policy.clone();
            async move {
                response
                    .headers_mut()
                    .insert(header::CONTENT_SECURITY_POLICY, policy);
                response
            }
        },
    ))
}

fn serve(path: &str, request: &HeaderMap) -> Response {
    let Some(asset) = asset(path) else {
        return (StatusCode::NOT_FOUND, format!("no such file: /{path}\n")).into_response();
    };
    let mut headers = HeaderMap::new();
    headers.insert(header::ETAG, HeaderValue::from_static(asset.etag));
    // Revalidated on every load, so a broker upgrade shows its new UI at once.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    let unchanged = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| {
            tags.split(',')
                .any(|t| t.trim() == asset.etag || t.trim() == "*")
        });
    if unchanged {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(path)),
    );
    (headers, asset.bytes).into_response()
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("txt") => "text/plain; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    async fn get(uri: &str, etag: Option<&str>) -> Response {
        let mut request = Request::get(uri);
        if let Some(etag) = etag {
            request = request.header(header::IF_NONE_MATCH, etag);
        }
        router::<()>(Login::Basic)
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    #[test]
    fn both_applications_are_bundled_with_their_libraries() {
        for app in APPS {
            let page =
                std::str::from_utf8(asset(&format!("{app}/index.html")).unwrap().bytes).unwrap();
            assert!(
                page.contains("app.js") && page.contains("app.css"),
                "{page}"
            );
            assert!(asset(&format!("{app}/app.js")).unwrap().bytes.len() > 1000);
        }
        // The diagram viewer's and the form renderer's styles are in the bundles.
        let css = |app: &str| {
            std::str::from_utf8(asset(&format!("{app}/app.css")).unwrap().bytes).unwrap()
        };
        assert!(css("operate").contains(".djs-container"));
        assert!(css("tasklist").contains(".fjs-container"));
    }

    #[tokio::test]
    async fn pages_are_served_with_their_types_and_revalidated() {
        let page = get("/operate/", None).await;
        assert_eq!(page.status(), StatusCode::OK);
        assert_eq!(
            page.headers()[header::CONTENT_TYPE],
            "text/html; charset=utf-8"
        );
        assert!(page.headers().contains_key(header::CONTENT_SECURITY_POLICY));
        let script = get("/tasklist/app.js", None).await;
        assert_eq!(
            script.headers()[header::CONTENT_TYPE],
            "text/javascript; charset=utf-8"
        );
        let etag = script.headers()[header::ETAG].to_str().unwrap().to_owned();
        assert_eq!(
            get("/tasklist/app.js", Some(&etag)).await.status(),
            StatusCode::NOT_MODIFIED
        );
        assert_eq!(
            get("/tasklist/app.js", Some("\"other\"")).await.status(),
            StatusCode::OK
        );
    }

    #[tokio::test]
    async fn bare_paths_lead_to_the_applications_and_unknown_files_are_404() {
        let bare = get("/tasklist", None).await;
        assert_eq!(bare.status(), StatusCode::PERMANENT_REDIRECT);
        assert_eq!(bare.headers()[header::LOCATION], "/tasklist/");
        assert_eq!(
            get("/", None).await.headers()[header::LOCATION],
            "/operate/"
        );
        assert_eq!(
            get("/operate/nothing.js", None).await.status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            get("/operate/..%2Fsecret", None).await.status(),
            StatusCode::NOT_FOUND
        );
    }

    #[tokio::test]
    async fn the_login_is_configured_and_the_provider_may_be_called() {
        let login = Login::Oidc {
            issuer: "https://idp.example:8443/realms/bank".into(),
            client_id: "waggle-ui".into(),
            scope: "openid".into(),
        };
        let page = router::<()>(login)
            .oneshot(
                Request::get("/tasklist/config.json")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        let policy = page.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            policy.contains("connect-src 'self' https://idp.example:8443;"),
            "{policy}"
        );
        let body = axum::body::to_bytes(page.into_body(), 1 << 16)
            .await
            .unwrap();
        let config: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(config["login"], "oidc");
        assert_eq!(config["clientId"], "waggle-ui");
        let basic = get("/operate/config.json", None).await;
        let policy = basic.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap();
        assert!(policy.contains("connect-src 'self';"), "{policy}");
        assert_eq!(origin("http://127.0.0.1:9/x?y"), Some("http://127.0.0.1:9"));
        assert_eq!(origin("nonsense"), None);
    }
}
