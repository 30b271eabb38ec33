//! The `[security]` table: who must prove who they are on the client ports.

use serde::{Deserialize, Serialize};

use crate::config::ConfigError;

/// How clients of the gRPC gateway, the REST API and the management port
/// authenticate (`security.authentication`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Authentication {
    /// Nobody: every client may do everything. Only on loopback, unless
    /// `security.allow_unauthenticated` says otherwise.
    #[default]
    None,
    /// HTTP Basic credentials (gRPC metadata `authorization: Basic ...`)
    /// of a user in the replicated state.
    Basic,
    /// JWT bearer tokens of an OpenID provider (`security.oidc_*`).
    Oidc,
}

/// The `[security]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityConfig {
    /// `none` or `basic`.
    pub authentication: Authentication,
    /// `"name:password"`: a user created when none of that name exists, so
    /// that a new cluster has someone who can log in. Empty: none.
    pub initial_user: String,
    /// Serve clients without authentication on an address other than
    /// loopback (`authentication = "none"` with `network.host` not a
    /// loopback address is otherwise a configuration error).
    pub allow_unauthenticated: bool,
    /// `/health`, `/ready`, `/startup` and `/metrics` of the management port
    /// answer without credentials (for probes and Prometheus).
    pub public_health_and_metrics: bool,
    /// `oidc`: the issuer (`iss` of the tokens); its keys are found through
    /// `<issuer>/.well-known/openid-configuration`.
    pub oidc_issuer_uri: String,
    /// `oidc`: the JWKS URL, when discovery is not to be used.
    pub oidc_jwks_uri: String,
    /// `oidc`: a token's `aud` must hold one of these.
    pub oidc_audiences: Vec<String>,
    /// `oidc`: the claim naming a user.
    pub oidc_username_claim: String,
    /// `oidc`: the claim naming a client (an application with client
    /// credentials); a token with it is a client's, else a user's.
    pub oidc_client_id_claim: String,
    /// `oidc`: how far the clocks of the provider and the broker may
    /// differ when `exp` and `nbf` are checked.
    pub oidc_clock_skew_ms: u64,
    /// `oidc`: the public client (authorization code with PKCE) Operate and
    /// Tasklist sign their users in with; its redirect URIs are
    /// `<REST address>/operate/` and `/tasklist/`. Empty: the applications
    /// cannot sign anyone in.
    pub oidc_ui_client_id: String,
    /// `oidc`: the scopes Operate and Tasklist ask for, space-separated.
    pub oidc_ui_scope: String,
    /// Requests are checked against the authorizations of their user or
    /// client (and its roles); off, every authenticated caller may do
    /// everything.
    pub authorizations_enabled: bool,
    /// Clients (OIDC client ids) made members of the `admin` role.
    pub admin_clients: Vec<String>,
    /// Data belongs to tenants: a caller sees and acts only within the
    /// tenants it is a member of (see `identity::tenants`). Needs
    /// authentication.
    pub multi_tenancy: bool,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        Self {
            authentication: Authentication::None,
            initial_user: String::new(),
            allow_unauthenticated: false,
            public_health_and_metrics: true,
            oidc_issuer_uri: String::new(),
            oidc_jwks_uri: String::new(),
            oidc_audiences: Vec::new(),
            oidc_username_claim: "sub".into(),
            oidc_client_id_claim: "client_id".into(),
            oidc_clock_skew_ms: 60_000,
            oidc_ui_client_id: String::new(),
            oidc_ui_scope: "openid".into(),
            authorizations_enabled: true,
            admin_clients: Vec::new(),
            multi_tenancy: false,
        }
    }
}

impl SecurityConfig {
    /// Whether requests are checked against authorizations.
    pub fn authorizes(&self) -> bool {
        self.authentication != Authentication::None && self.authorizations_enabled
    }

    /// The initial user's name and password, if one is configured.
    pub fn initial_user(&self) -> Option<(&str, &str)> {
        self.initial_user.split_once(':')
    }

    /// Checks the keys against each other and against the address the
    /// client ports bind to.
    pub fn validate(&self, host: &str) -> Result<(), ConfigError> {
        if !self.initial_user.is_empty() {
            match self.initial_user() {
                Some((name, password))
                    if engine::identity::valid_username(name) && !password.is_empty() => {}
                _ => {
                    return Err(ConfigError::Key {
                        key: "security.initial_user".into(),
                        message: "must be \"name:password\" (a name of letters, digits or \
                                  '_~@.+-', and a password that is not empty)"
                            .into(),
                    })
                }
            }
            if self.authentication != Authentication::Basic {
                return Err(ConfigError::Key {
                    key: "security.initial_user".into(),
                    message: "needs security.authentication = \"basic\"".into(),
                });
            }
        }
        if self.authentication == Authentication::Oidc {
            self.validate_oidc()?;
        } else if !self.oidc_ui_client_id.is_empty() {
            return Err(ConfigError::Key {
                key: "security.oidc_ui_client_id".into(),
                message: "needs security.authentication = \"oidc\"".into(),
            });
        }
        if self.multi_tenancy && self.authentication == Authentication::None {
            return Err(ConfigError::Key {
                key: "security.multi_tenancy".into(),
                message: "needs security.authentication = \"basic\" or \"oidc\": without \
                          authentication a caller has no tenants"
                    .into(),
            });
        }
        let loopback = host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
        if self.authentication == Authentication::None && !loopback && !self.allow_unauthenticated {
            return Err(ConfigError::Key {
                key: "security.authentication".into(),
                message: format!(
                    "is \"none\" while the client ports listen on {host} (network.host), not \
                     on loopback: anyone who reaches them could deploy and run anything. Set \
                     security.authentication = \"basic\" (with security.initial_user = \
                     \"name:password\"), or security.allow_unauthenticated = true on a network \
                     only trusted clients reach"
                ),
            });
        }
        Ok(())
    }
}

impl SecurityConfig {
    fn validate_oidc(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: String| ConfigError::Key {
            key: format!("security.{key}"),
            message,
        };
        let url = |key: &str, value: &str, required: bool| {
            if value.is_empty() && !required {
                return Ok(());
            }
            if value.starts_with("https://") || value.starts_with("http://") {
                Ok(())
            } else {
                Err(invalid(
                    key,
                    format!("`{value}` is not an http:// or https:// URL (authentication = \"oidc\" needs it)"),
                ))
            }
        };
        url("oidc_issuer_uri", &self.oidc_issuer_uri, true)?;
        url("oidc_jwks_uri", &self.oidc_jwks_uri, false)?;
        if self.oidc_audiences.iter().all(|a| a.is_empty()) {
            return Err(invalid(
                "oidc_audiences",
                "must name the audience tokens for this cluster carry (aud)".into(),
            ));
        }
        if self.oidc_username_claim.is_empty() {
            return Err(invalid("oidc_username_claim", "must not be empty".into()));
        }
        if self.oidc_clock_skew_ms > 3_600_000 {
            return Err(invalid(
                "oidc_clock_skew_ms",
                format!("{} is more than an hour", self.oidc_clock_skew_ms),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(initial_user: &str) -> SecurityConfig {
        SecurityConfig {
            authentication: Authentication::Basic,
            initial_user: initial_user.into(),
            ..SecurityConfig::default()
        }
    }

    fn key_of(result: Result<(), ConfigError>) -> String {
        match result {
            Err(ConfigError::Key { key, .. }) => key,
            other => panic!("expected a key error, got {other:?}"),
        }
    }

    #[test]
    fn multi_tenancy_needs_authentication() {
        let tenants_without_authentication = SecurityConfig {
            multi_tenancy: true,
            ..SecurityConfig::default()
        };
        assert_eq!(
            key_of(tenants_without_authentication.validate("127.0.0.1")),
            "security.multi_tenancy"
        );
        let with_basic = SecurityConfig {
            multi_tenancy: true,
            ..basic("demo:demo")
        };
        assert!(with_basic.validate("127.0.0.1").is_ok());
    }

    #[test]
    fn the_ui_client_needs_oidc() {
        let ui_client_with_basic = SecurityConfig {
            oidc_ui_client_id: "waggle-ui".into(),
            ..basic("demo:demo")
        };
        assert_eq!(
            key_of(ui_client_with_basic.validate("127.0.0.1")),
            "security.oidc_ui_client_id"
        );
    }

    #[test]
    fn none_is_refused_off_loopback_unless_allowed() {
        let none = SecurityConfig::default();
        assert!(none.validate("127.0.0.1").is_ok());
        assert!(none.validate("::1").is_ok());
        assert_eq!(key_of(none.validate("0.0.0.0")), "security.authentication");
        assert_eq!(key_of(none.validate("10.1.2.3")), "security.authentication");
        let allowed = SecurityConfig {
            allow_unauthenticated: true,
            ..none
        };
        assert!(allowed.validate("0.0.0.0").is_ok());
        assert!(basic("").validate("0.0.0.0").is_ok());
    }

    #[test]
    fn the_initial_user_is_checked() {
        assert!(basic("demo:demo").validate("0.0.0.0").is_ok());
        assert_eq!(
            basic("demo:pass:word").initial_user(),
            Some(("demo", "pass:word"))
        );
        for bad in ["demo", "demo:", ":demo", "a b:c"] {
            assert_eq!(
                key_of(basic(bad).validate("0.0.0.0")),
                "security.initial_user",
                "{bad}"
            );
        }
        let none = SecurityConfig {
            initial_user: "demo:demo".into(),
            ..SecurityConfig::default()
        };
        assert_eq!(key_of(none.validate("127.0.0.1")), "security.initial_user");
    }

    #[test]
    fn oidc_needs_an_issuer_and_an_audience() {
        let oidc = SecurityConfig {
            authentication: Authentication::Oidc,
            oidc_issuer_uri: "https://id.example.org/realms/a".into(),
            oidc_audiences: vec!["waggle".into()],
            ..SecurityConfig::default()
        };
        assert!(oidc.validate("0.0.0.0").is_ok());
        let no_issuer = SecurityConfig {
            oidc_issuer_uri: String::new(),
            ..oidc.clone()
        };
        assert_eq!(
            key_of(no_issuer.validate("0.0.0.0")),
            "security.oidc_issuer_uri"
        );
        let no_audience = SecurityConfig {
            oidc_audiences: Vec::new(),
            ..oidc.clone()
        };
        assert_eq!(
            key_of(no_audience.validate("0.0.0.0")),
            "security.oidc_audiences"
        );
        let bad_jwks = SecurityConfig {
            oidc_jwks_uri: "keys.json".into(),
            ..oidc
        };
        assert_eq!(
            key_of(bad_jwks.validate("0.0.0.0")),
            "security.oidc_jwks_uri"
        );
    }
}
