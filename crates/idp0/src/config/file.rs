//! The configuration file's format: what `idp0.toml` may say, read with `deny_unknown_fields`
//! (see the parent module for an example); [`super::Config`] validates it into runtime types.

use std::path::PathBuf;

use jsonwebtoken::jwk::JwkSet;
use serde::{Deserialize, Serialize};

/// The file format.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Show demo credentials on the login page (generated development configurations only).
    #[serde(default)]
    pub development: bool,
    /// Lifetime of ID tokens and org access tokens, seconds.
    #[serde(default = "default_id_token_lifetime")]
    pub id_token_lifetime_seconds: i64,
    /// Lifetime of ID-JAGs, seconds.
    #[serde(default = "default_id_jag_lifetime")]
    pub id_jag_lifetime_seconds: i64,
    /// Lifetime of refresh tokens, seconds.
    #[serde(default = "default_refresh_lifetime")]
    pub refresh_token_lifetime_seconds: i64,
    /// Lifetime of the SSO session, seconds.
    #[serde(default = "default_session_lifetime")]
    pub session_lifetime_seconds: i64,
    /// The username the management API's admin token belongs to (`GET /api/v1/users/me`);
    /// default: the first user of the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_user: Option<String>,
    /// The org authorization server's signing algorithm: `RS256` (default) or `ES256`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_alg: Option<String>,
    /// People.
    #[serde(default)]
    pub users: Vec<UserEntry>,
    /// Web applications.
    #[serde(default)]
    pub clients: Vec<ClientEntry>,
    /// AI agent identities.
    #[serde(default)]
    pub agents: Vec<AgentEntry>,
    /// Custom authorization servers.
    #[serde(default)]
    pub authorization_servers: Vec<AuthorizationServerEntry>,
}

fn default_id_token_lifetime() -> i64 {
    3600
}
fn default_id_jag_lifetime() -> i64 {
    300
}
fn default_refresh_lifetime() -> i64 {
    30 * 24 * 3600
}
fn default_session_lifetime() -> i64 {
    12 * 3600
}
fn default_access_token_lifetime() -> i64 {
    3600
}

/// A person.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserEntry {
    /// Stable id (`sub`, `uid`); derived from the username when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Login name.
    pub username: String,
    /// Display name.
    pub name: String,
    /// E-mail address.
    pub email: String,
    /// Argon2id PHC string.
    pub password_hash: String,
}

/// How a client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// HTTP Basic (RFC 6749 §2.3.1).
    ClientSecretBasic,
    /// `client_id` + `client_secret` in the body.
    ClientSecretPost,
    /// RFC 7523 client assertion signed with a registered key.
    PrivateKeyJwt,
    /// Public client (PKCE only).
    None,
}

impl AuthMethod {
    /// The registered name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::PrivateKeyJwt => "private_key_jwt",
            Self::None => "none",
        }
    }
}

/// A web application.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientEntry {
    /// Client id.
    pub client_id: String,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Secret for `client_secret_*`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// Instead of `client_secret`: the lowercase hex SHA-256 of the secret, so the file (or the
    /// store, for clients created through the management API) never holds it in the clear.
    /// Client secrets are random and long, so a plain digest is enough (no password hashing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_sha256: Option<String>,
    /// Token endpoint authentication.
    pub auth_method: AuthMethod,
    /// Exact redirect URIs.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// Exact post-logout redirect URIs.
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    /// Public keys for `private_key_jwt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<JwkSet>,
    /// File holding a JWKS or a single public JWK, relative to the config file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_file: Option<PathBuf>,
    /// `web` (default) or `native`: a native app's loopback redirect URIs match on any port.
    #[serde(default, skip_serializing_if = "ApplicationType::is_web")]
    pub application_type: ApplicationType,
    /// The grants this client may use at all (URNs or short names); absent: whatever the
    /// authorization servers' policies allow it. Apps created through the management API carry
    /// their `grant_types` here, as Okta enforces them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_types: Option<Vec<String>>,
}

/// What kind of application a client is (OIDC Dynamic Client Registration §2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApplicationType {
    /// A web application: redirect URIs match exactly.
    #[default]
    Web,
    /// A native application (a command-line or desktop app, RFC 8252): a public client whose
    /// loopback redirect URIs match on any port.
    Native,
}

impl ApplicationType {
    /// Whether this is the default, `web`.
    pub fn is_web(&self) -> bool {
        *self == Self::Web
    }
}

/// An AI agent identity (a workload principal): authenticates with `private_key_jwt` only.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentEntry {
    /// Client id.
    pub client_id: String,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Public keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<JwkSet>,
    /// File holding a JWKS or a single public JWK, relative to the config file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_file: Option<PathBuf>,
    /// Applications whose users' ID tokens this agent may exchange for ID-JAGs.
    #[serde(default)]
    pub linked_clients: Vec<String>,
    /// The agent's managed connections (Okta's `IDENTITY_ASSERTION_CUSTOM_AS`). When given, an
    /// ID-JAG is issued only for a listed authorization server, and only for the connection's
    /// scopes; when absent, any server whose policy names the agent is reachable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connections: Option<Vec<ConnectionEntry>>,
    /// The agent's brokered ("OAuth STS") connections to third-party applications and MCP
    /// servers (see [`super::brokered`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub brokered_connections: Vec<super::brokered::BrokeredConnectionEntry>,
}

/// A managed connection of an agent to a custom authorization server.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionEntry {
    /// The custom authorization server's id.
    pub authorization_server: String,
    /// The resource indicator the agent names (the server's audience).
    pub resource: String,
    /// The only scopes an ID-JAG for this connection may carry (`INCLUDE_ONLY`).
    pub scopes: Vec<String>,
}

/// A custom authorization server.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorizationServerEntry {
    /// Path segment: the issuer is `<base>/oauth2/<id>`.
    pub id: String,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Resource identifier put in access tokens' `aud`.
    pub audience: String,
    /// The algorithm this server signs its tokens with: `RS256` (default) or `ES256`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_alg: Option<String>,
    /// Scopes this server knows.
    pub scopes: Vec<String>,
    /// Scopes granted when a request names none.
    #[serde(default)]
    pub default_scopes: Vec<String>,
    /// Clients (resource servers) that may introspect this server's access tokens whoever they
    /// were issued to (RFC 7662 §4); any other client sees only its own tokens as active.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource_clients: Vec<String>,
    /// Access policies, first match wins.
    #[serde(default)]
    pub policies: Vec<PolicyEntry>,
}

/// Which clients may obtain which scopes by which grants.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyEntry {
    /// Client ids this policy applies to.
    pub clients: Vec<String>,
    /// Grant types allowed (URNs or short names).
    pub grant_types: Vec<String>,
    /// Scopes these clients may obtain.
    pub scopes: Vec<String>,
    /// Access token lifetime.
    #[serde(default = "default_access_token_lifetime")]
    pub access_token_lifetime_seconds: i64,
}
