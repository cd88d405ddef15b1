//! idp0's configuration: a TOML file with users, clients, agents and authorization servers,
//! parsed with `deny_unknown_fields` into runtime types at load time (STYLE §2).
//!
//! ```toml
//! admin_user = "alice"        # optional: who the management API's admin token acts as
//!                             # (GET /api/v1/users/me); default: the first user
//! signing_alg = "ES256"       # optional: the org authorization server's signing algorithm,
//!                             # "RS256" (default) or "ES256"; see `crate::keyring` for a change
//!
//! [[users]]
//! id = "00u1alice"            # optional; generated from the username when absent
//! username = "alice"
//! name = "Alice Example"
//! email = "alice@example.com"
//! password_hash = "$argon2id$v=19$..."
//!
//! [[clients]]                 # web applications (OIDC relying parties)
//! client_id = "agent0"
//! client_secret = "..."
//! auth_method = "client_secret_basic"   # or client_secret_post, private_key_jwt, none
//! redirect_uris = ["http://localhost:3000/callback"]
//! post_logout_redirect_uris = ["http://localhost:3000/"]
//!
//! [[agents]]                  # AI agent identities: private_key_jwt only
//! client_id = "agent0-agent"
//! jwks = { keys = [ { kty = "RSA", ... } ] }   # or jwks_file = "agent.jwks.json"
//! linked_clients = ["agent0"] # apps whose users' ID tokens the agent may exchange
//!
//! [[agents.brokered_connections]]   # brokered consent ("OAuth STS"); see `brokered`
//! kind = "application"        # or "mcp_server"
//! name = "GitHub"
//! resource = "https://api.github.com"   # sent by the agent as `resource`; verbatim (URLs lose
//!                                       # a trailing slash, as Okta stores them) or `orn:…`
//! authorize_url = "https://github.com/login/oauth/authorize"
//! token_url = "https://github.com/login/oauth/access_token"
//! # revocation_url = "https://isv.example/oauth/revoke"   # optional
//! # revocation = "github"     # default "rfc7009" (a form POST); "github": revocation_url must
//! #                           # be GitHub's grant URL …/applications/<client_id>/grant
//! #                           # (https://api.github.com/applications/<client_id>/grant), else a
//! #                           # config error; idp0 DELETEs it (the last consent using the app)
//! #                           # or its sibling …/token (one token, while another consent of the
//! #                           # person uses the same app) with Basic client_id:secret and
//! #                           # {"access_token": …}
//! client_id = "Iv1.0123"      # idp0's OAuth app at the ISV; its callback is
//!                             # <issuer>/oauth2/v1/sts/callback
//! client_secret_env = "GITHUB_CLIENT_SECRET"   # or client_secret = "…"
//! scopes = ["repo", "read:user"]
//!
//! [[authorization_servers]]   # custom authorization servers at /oauth2/<id>
//! id = "todo0"
//! audience = "http://localhost:5002/mcp"
//! signing_alg = "ES256"       # optional, per server: "RS256" (default) or "ES256"
//! scopes = ["mcp:connect", "mcp:tools:read", "mcp:tools:manage", "mcp:tools:delete"]
//! default_scopes = ["mcp:connect"]
//! [[authorization_servers.policies]]
//! clients = ["agent0-agent"]
//! grant_types = ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
//! scopes = ["mcp:connect", "mcp:tools:read", "mcp:tools:manage", "mcp:tools:delete"]
//! access_token_lifetime_seconds = 3600
//! ```
//!
//! An authorization server entry may also name `resource_clients = ["todo0"]`: the clients
//! (resource servers) allowed to introspect any of its access tokens (RFC 7662 §4).
//!
//! A client with `application_type = "native"` (a public client, `auth_method = "none"`) may
//! register loopback redirect URIs such as `http://127.0.0.1/callback`: a request naming the
//! same scheme, IP literal and path with any port matches (RFC 8252 §7.3), because a command-line
//! app listens on whatever ephemeral port it gets. Only `127.0.0.1` and `[::1]` are treated so
//! (RFC 8252 §8.3), and every other part of the URI still matches exactly; web clients always
//! match exactly.

pub mod brokered;
mod checks;
mod file;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use self::brokered::{
    BrokeredConnection, BrokeredConnectionEntry, BrokeredKind, RevocationStyle,
};
use self::checks::{
    check_redirect_uri, grant_type_named, is_loopback_match, parse_scopes, read_jwks, signing_alg,
};
pub use self::file::{
    AgentEntry, ApplicationType, AuthMethod, AuthorizationServerEntry, ClientEntry, ConfigFile,
    ConnectionEntry, PolicyEntry, UserEntry,
};
use jsonwebtoken::jwk::JwkSet;
use protocol::Scopes;
use protocol::keys::KeyKind;
use protocol::oauth::GrantType;
use secrecy::SecretString;

/// A configuration problem, naming the key and the fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// TOML syntax or an unknown / mistyped key.
    #[error("{path}: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message (names the key and line).
        message: String,
    },
    /// A value that parses but makes no sense.
    #[error("{key}: {problem}")]
    Invalid {
        /// Dotted path of the key.
        key: String,
        /// What is wrong and how to fix it.
        problem: String,
    },
}

fn invalid(key: impl Into<String>, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        problem: problem.into(),
    }
}

/// A user at run time.
#[derive(Debug, Clone)]
pub struct User {
    /// Stable id.
    pub id: String,
    /// Login name.
    pub username: String,
    /// Display name.
    pub name: String,
    /// E-mail.
    pub email: String,
    /// Argon2id PHC string.
    pub password_hash: String,
}

/// A registered client (application or agent) at run time.
#[derive(Debug, Clone)]
pub struct Client {
    /// Client id.
    pub client_id: String,
    /// Token endpoint authentication.
    pub auth_method: AuthMethod,
    /// Secret, for `client_secret_*`.
    pub secret: Option<ClientSecret>,
    /// Public keys, for `private_key_jwt`.
    pub jwks: Option<JwkSet>,
    /// Exact redirect URIs.
    pub redirect_uris: Vec<String>,
    /// Exact post-logout redirect URIs.
    pub post_logout_redirect_uris: Vec<String>,
    /// `native`: loopback redirect URIs match on any port.
    pub application_type: ApplicationType,
    /// Whether this is an AI agent identity.
    pub is_agent: bool,
    /// For agents: applications whose users' ID tokens it may exchange.
    pub linked_clients: HashSet<String>,
    /// For agents: the managed connections, when the agent has them (see [`AgentEntry`]).
    pub connections: Option<Vec<Connection>>,
    /// For agents: the brokered ("OAuth STS") connections.
    pub brokered: Vec<Arc<BrokeredConnection>>,
    /// The grants this client may use, when limited (see [`ClientEntry::grant_types`]).
    pub grant_types: Option<HashSet<GrantType>>,
    /// For apps created through the management API: the only users who may sign in to it
    /// (Okta's app assignments); `None` admits every user.
    pub assigned_users: Option<HashSet<String>>,
}

/// A registered client secret: as configured, or only its SHA-256 digest.
#[derive(Debug, Clone)]
pub enum ClientSecret {
    /// The secret itself.
    Plain(SecretString),
    /// Lowercase hex SHA-256 of the secret.
    Sha256(String),
}

/// A managed connection at run time.
#[derive(Debug, Clone)]
pub struct Connection {
    /// Custom authorization server id.
    pub server: String,
    /// Resource indicator.
    pub resource: String,
    /// Scopes it may carry.
    pub scopes: Scopes,
}

impl Client {
    /// The agent's connection to custom server `server_id`: `Ok(None)` when the agent is not
    /// restricted by connections, `Err(())` when it has connections and none reaches that server.
    #[allow(clippy::result_unit_err)]
    pub fn connection_to(&self, server_id: &str) -> Result<Option<&Connection>, ()> {
        match &self.connections {
            None => Ok(None),
            Some(list) => list
                .iter()
                .find(|c| c.server == server_id)
                .map(Some)
                .ok_or(()),
        }
    }
}

impl Client {
    /// The agent's brokered connection for `resource` (exactly as configured, after the same
    /// normalisation), if any.
    pub fn brokered_connection(&self, resource: &str) -> Option<&Arc<BrokeredConnection>> {
        self.brokered.iter().find(|c| c.resource == resource)
    }

    /// Whether `user_id` may sign in to this client (it is assigned, or the client admits all).
    pub fn is_assigned(&self, user_id: &str) -> bool {
        self.assigned_users
            .as_ref()
            .is_none_or(|users| users.contains(user_id))
    }

    /// Whether `uri` is one of this client's redirect URIs: exactly, or, for a native
    /// application, a registered loopback URI on another port (RFC 8252 §7.3).
    pub fn is_redirect_uri(&self, uri: &str) -> bool {
        self.redirect_uris.iter().any(|registered| {
            registered == uri
                || (self.application_type == ApplicationType::Native
                    && is_loopback_match(registered, uri))
        })
    }
}

/// A policy at run time.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Clients.
    pub clients: HashSet<String>,
    /// Grant types.
    pub grant_types: HashSet<GrantType>,
    /// Scopes.
    pub scopes: Scopes,
    /// Access token lifetime, seconds.
    pub access_token_lifetime: i64,
}

/// A custom authorization server at run time (issuer is resolved later from the base URL).
#[derive(Debug, Clone)]
pub struct CustomServer {
    /// Path id.
    pub id: String,
    /// Resource identifier (`aud`).
    pub audience: String,
    /// Known scopes.
    pub scopes: Scopes,
    /// Default scopes.
    pub default_scopes: Scopes,
    /// Policies in order.
    pub policies: Vec<Policy>,
    /// Clients that may introspect any of this server's access tokens.
    pub resource_clients: HashSet<String>,
    /// The kind of key it signs with (`signing_alg`).
    pub signing_alg: KeyKind,
}

impl CustomServer {
    /// The first policy allowing `client_id` to use `grant`.
    pub fn policy_for(&self, client_id: &str, grant: &GrantType) -> Option<&Policy> {
        self.policies
            .iter()
            .find(|p| p.clients.contains(client_id) && p.grant_types.contains(grant))
    }
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Show demo credentials on the login page.
    pub development: bool,
    /// ID token lifetime.
    pub id_token_lifetime: i64,
    /// ID-JAG lifetime.
    pub id_jag_lifetime: i64,
    /// Refresh token lifetime.
    pub refresh_token_lifetime: i64,
    /// SSO session lifetime.
    pub session_lifetime: i64,
    /// The kind of key the org authorization server signs with (`signing_alg`).
    pub signing_alg: KeyKind,
    /// Users by username.
    pub users: HashMap<String, Arc<User>>,
    /// Clients by id.
    pub clients: HashMap<String, Arc<Client>>,
    /// Custom servers by id.
    pub servers: Vec<CustomServer>,
    /// Login protection (concurrency of password checks, throttling); not in the file yet.
    pub login: crate::login_guard::LoginLimits,
    /// The user the management API's admin token acts as (`admin_user`, or the first user).
    pub admin_user: Option<Arc<User>>,
    /// The file this was built from, and the directory its relative paths resolve against: the
    /// seed that entries managed at run time are added to ([`Config::with_managed`]).
    seed: Arc<(ConfigFile, PathBuf)>,
}

/// Directory entries created at run time (through the management API), added to the file's.
#[derive(Debug, Clone, Default)]
pub struct ManagedEntries {
    /// Web applications.
    pub clients: Vec<ClientEntry>,
    /// AI agent identities.
    pub agents: Vec<AgentEntry>,
    /// Custom authorization servers.
    pub authorization_servers: Vec<AuthorizationServerEntry>,
    /// Users assigned to managed clients (Okta's app assignments), by client id: a client listed
    /// here may be signed in to only by these user ids. Clients not listed admit every user.
    pub assignments: HashMap<String, Vec<String>>,
}

impl Config {
    /// Reads and validates a TOML file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let file: ConfigFile = toml::from_str(&text).map_err(|e| ConfigError::Syntax {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        Self::from_file(file, path.parent().unwrap_or(Path::new(".")))
    }

    /// The file's entries plus `managed`, validated together as one file would be; the login
    /// limits carry over. Errors name the managed entry by its index after the file's own.
    pub fn with_managed(&self, managed: &ManagedEntries) -> Result<Self, ConfigError> {
        let (file, base_dir) = &*self.seed;
        let mut merged = file.clone();
        merged.clients.extend(managed.clients.iter().cloned());
        merged.agents.extend(managed.agents.iter().cloned());
        merged
            .authorization_servers
            .extend(managed.authorization_servers.iter().cloned());
        let mut config = Self::build(merged, base_dir)?;
        for (client_id, users) in &managed.assignments {
            if let Some(client) = config.clients.get_mut(client_id) {
                Arc::make_mut(client).assigned_users = Some(users.iter().cloned().collect());
            }
        }
        config.seed = self.seed.clone();
        config.login = self.login.clone();
        Ok(config)
    }

    /// Validates a parsed file; relative `jwks_file`s resolve against `base_dir`.
    pub fn from_file(file: ConfigFile, base_dir: &Path) -> Result<Self, ConfigError> {
        let mut config = Self::build(file.clone(), base_dir)?;
        config.seed = Arc::new((file, base_dir.to_owned()));
        Ok(config)
    }

    /// The file's own entries (before any managed ones were added).
    pub fn seed(&self) -> &ConfigFile {
        &self.seed.0
    }

    fn build(file: ConfigFile, base_dir: &Path) -> Result<Self, ConfigError> {
        let org_signing_alg = signing_alg(
            "signing_alg",
            "the org authorization server",
            file.signing_alg.as_deref(),
        )?;
        let admin_username = file
            .admin_user
            .clone()
            .or_else(|| file.users.first().map(|u| u.username.clone()));
        let mut users = HashMap::new();
        let mut user_ids = HashSet::new();
        for (i, u) in file.users.into_iter().enumerate() {
            let key = format!("users[{i}]");
            if u.username.trim().is_empty() {
                return Err(invalid(format!("{key}.username"), "must not be empty"));
            }
            if argon2::PasswordHash::new(&u.password_hash).is_err() {
                return Err(invalid(
                    format!("{key}.password_hash"),
                    "not a PHC string; create one with `secure-agent idp hash-password`",
                ));
            }
            let id = u.id.unwrap_or_else(|| user_id_for(&u.username));
            if !user_ids.insert(id.clone()) {
                return Err(invalid(
                    format!("{key}.id"),
                    format!("duplicate user id {id:?}"),
                ));
            }
            let user = Arc::new(User {
                id,
                username: u.username.clone(),
                name: u.name,
                email: u.email,
                password_hash: u.password_hash,
            });
            if users.insert(u.username.clone(), user).is_some() {
                return Err(invalid(
                    format!("{key}.username"),
                    format!("duplicate username {:?}", u.username),
                ));
            }
        }

        let admin_user = match admin_username {
            Some(name) => Some(users.get(&name).cloned().ok_or_else(|| {
                invalid(
                    "admin_user",
                    format!("{name:?} is not the username of a configured user"),
                )
            })?),
            None => None,
        };

        let mut clients = HashMap::new();
        for (i, c) in file.clients.into_iter().enumerate() {
            let key = format!("clients[{i}]");
            let jwks = read_jwks(&key, c.jwks, c.jwks_file.as_deref(), base_dir)?;
            let secret = match (c.client_secret, c.client_secret_sha256) {
                (Some(_), Some(_)) => {
                    return Err(invalid(
                        format!("{key}.client_secret_sha256"),
                        "give `client_secret` or `client_secret_sha256`, not both",
                    ));
                }
                (Some(plain), None) => Some(ClientSecret::Plain(SecretString::from(plain))),
                (None, Some(digest)) => {
                    let is_hex = digest.len() == 64
                        && digest
                            .bytes()
                            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
                    if !is_hex {
                        return Err(invalid(
                            format!("{key}.client_secret_sha256"),
                            "must be 64 lowercase hex digits (the SHA-256 of the secret)",
                        ));
                    }
                    Some(ClientSecret::Sha256(digest))
                }
                (None, None) => None,
            };
            match c.auth_method {
                AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost
                    if secret.is_none() =>
                {
                    return Err(invalid(
                        format!("{key}.client_secret"),
                        "required for client_secret_basic / client_secret_post",
                    ));
                }
                AuthMethod::PrivateKeyJwt if jwks.is_none() => {
                    return Err(invalid(
                        format!("{key}.jwks"),
                        "private_key_jwt needs `jwks` or `jwks_file`",
                    ));
                }
                _ => {}
            }
            if c.application_type == ApplicationType::Native && c.auth_method != AuthMethod::None {
                return Err(invalid(
                    format!("{key}.auth_method"),
                    "a native application is a public client (RFC 8252 §8.4): use auth_method = \"none\"",
                ));
            }
            for uri in c.redirect_uris.iter().chain(&c.post_logout_redirect_uris) {
                check_redirect_uri(&key, uri, c.application_type)?;
            }
            let grant_types = c
                .grant_types
                .as_ref()
                .map(|names| {
                    names
                        .iter()
                        .map(|g| grant_type_named(&format!("{key}.grant_types"), g))
                        .collect::<Result<HashSet<_>, _>>()
                })
                .transpose()?;
            let client = Client {
                client_id: c.client_id.clone(),
                auth_method: c.auth_method,
                secret,
                jwks,
                redirect_uris: c.redirect_uris,
                post_logout_redirect_uris: c.post_logout_redirect_uris,
                application_type: c.application_type,
                is_agent: false,
                linked_clients: HashSet::new(),
                connections: None,
                brokered: Vec::new(),
                assigned_users: None,
                grant_types,
            };
            insert_client(&mut clients, &key, client)?;
        }
        let mut agent_connections = Vec::new();
        for (i, a) in file.agents.into_iter().enumerate() {
            let key = format!("agents[{i}]");
            let jwks =
                read_jwks(&key, a.jwks, a.jwks_file.as_deref(), base_dir)?.ok_or_else(|| {
                    invalid(
                        format!("{key}.jwks"),
                        "an agent needs `jwks` or `jwks_file` with its public key",
                    )
                })?;
            for linked in &a.linked_clients {
                if !clients.contains_key(linked) {
                    return Err(invalid(
                        format!("{key}.linked_clients"),
                        format!("{linked:?} is not a configured client"),
                    ));
                }
            }
            let client = Client {
                client_id: a.client_id.clone(),
                auth_method: AuthMethod::PrivateKeyJwt,
                secret: None,
                jwks: Some(jwks),
                redirect_uris: vec![],
                post_logout_redirect_uris: vec![],
                application_type: ApplicationType::Web,
                is_agent: true,
                linked_clients: a.linked_clients.into_iter().collect(),
                connections: None,
                brokered: brokered::build(&key, a.brokered_connections)?
                    .into_iter()
                    .map(Arc::new)
                    .collect(),
                assigned_users: None,
                grant_types: None,
            };
            if let Some(connections) = a.connections {
                agent_connections.push((key.clone(), a.client_id.clone(), connections));
            }
            insert_client(&mut clients, &key, client)?;
        }

        let mut servers = Vec::new();
        for (i, s) in file.authorization_servers.into_iter().enumerate() {
            let key = format!("authorization_servers[{i}]");
            let id_ok = !s.id.is_empty()
                && s.id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                && s.id != "v1";
            if !id_ok {
                return Err(invalid(
                    format!("{key}.id"),
                    "use letters, digits, '-' or '_' (and not \"v1\")",
                ));
            }
            if servers.iter().any(|x: &CustomServer| x.id == s.id) {
                return Err(invalid(
                    format!("{key}.id"),
                    format!("duplicate id {:?}", s.id),
                ));
            }
            let server_alg = signing_alg(
                &format!("{key}.signing_alg"),
                &format!("authorization server {:?}", s.id),
                s.signing_alg.as_deref(),
            )?;
            url::Url::parse(&s.audience).map_err(|e| {
                invalid(
                    format!("{key}.audience"),
                    format!("not an absolute URI: {e}"),
                )
            })?;
            let scopes = parse_scopes(&format!("{key}.scopes"), &s.scopes)?;
            let default_scopes = parse_scopes(&format!("{key}.default_scopes"), &s.default_scopes)?;
            if !scopes.contains_all(&default_scopes) {
                return Err(invalid(
                    format!("{key}.default_scopes"),
                    "must be a subset of `scopes`",
                ));
            }
            let mut policies = Vec::new();
            for (j, p) in s.policies.into_iter().enumerate() {
                let pkey = format!("{key}.policies[{j}]");
                for c in &p.clients {
                    if !clients.contains_key(c) {
                        return Err(invalid(
                            format!("{pkey}.clients"),
                            format!("{c:?} is not a configured client or agent"),
                        ));
                    }
                }
                let pscopes = parse_scopes(&format!("{pkey}.scopes"), &p.scopes)?;
                if !scopes.contains_all(&pscopes) {
                    return Err(invalid(
                        format!("{pkey}.scopes"),
                        "must be a subset of the server's `scopes`",
                    ));
                }
                let grant_types = p
                    .grant_types
                    .iter()
                    .map(|g| grant_type_named(&format!("{pkey}.grant_types"), g))
                    .collect::<Result<_, _>>()?;
                if !(60..=86_400).contains(&p.access_token_lifetime_seconds) {
                    return Err(invalid(
                        format!("{pkey}.access_token_lifetime_seconds"),
                        "must be between 60 and 86400",
                    ));
                }
                policies.push(Policy {
                    clients: p.clients.into_iter().collect(),
                    grant_types,
                    scopes: pscopes,
                    access_token_lifetime: p.access_token_lifetime_seconds,
                });
            }
            for c in &s.resource_clients {
                if !clients.contains_key(c) {
                    return Err(invalid(
                        format!("{key}.resource_clients"),
                        format!("{c:?} is not a configured client or agent"),
                    ));
                }
            }
            servers.push(CustomServer {
                id: s.id,
                audience: s.audience,
                scopes,
                default_scopes,
                policies,
                resource_clients: s.resource_clients.into_iter().collect(),
                signing_alg: server_alg,
            });
        }

        for (key, agent, entries) in agent_connections {
            let mut connections = Vec::new();
            for (j, c) in entries.into_iter().enumerate() {
                let ckey = format!("{key}.connections[{j}]");
                let server = servers
                    .iter()
                    .find(|s| s.id == c.authorization_server)
                    .ok_or_else(|| {
                        invalid(
                            format!("{ckey}.authorization_server"),
                            format!(
                                "{:?} is not a configured authorization server",
                                c.authorization_server
                            ),
                        )
                    })?;
                if c.resource != server.audience {
                    return Err(invalid(
                        format!("{ckey}.resource"),
                        format!("must be the server's audience {:?}", server.audience),
                    ));
                }
                let scopes = parse_scopes(&format!("{ckey}.scopes"), &c.scopes)?;
                if !server.scopes.contains_all(&scopes) {
                    return Err(invalid(
                        format!("{ckey}.scopes"),
                        "must be a subset of the server's `scopes`",
                    ));
                }
                connections.push(Connection {
                    server: server.id.clone(),
                    resource: c.resource,
                    scopes,
                });
            }
            if let Some(client) = clients.get_mut(&agent) {
                Arc::make_mut(client).connections = Some(connections);
            }
        }

        for (key, value, range) in [
            (
                "id_token_lifetime_seconds",
                file.id_token_lifetime_seconds,
                60..=86_400,
            ),
            (
                "id_jag_lifetime_seconds",
                file.id_jag_lifetime_seconds,
                30..=600,
            ),
            (
                "refresh_token_lifetime_seconds",
                file.refresh_token_lifetime_seconds,
                300..=365 * 86_400,
            ),
            (
                "session_lifetime_seconds",
                file.session_lifetime_seconds,
                300..=30 * 86_400,
            ),
        ] {
            if !range.contains(&value) {
                return Err(invalid(
                    key,
                    format!("must be between {} and {}", range.start(), range.end()),
                ));
            }
        }

        Ok(Config {
            development: file.development,
            id_token_lifetime: file.id_token_lifetime_seconds,
            id_jag_lifetime: file.id_jag_lifetime_seconds,
            refresh_token_lifetime: file.refresh_token_lifetime_seconds,
            session_lifetime: file.session_lifetime_seconds,
            signing_alg: org_signing_alg,
            users,
            clients,
            servers,
            login: crate::login_guard::LoginLimits::default(),
            admin_user,
            seed: Arc::default(),
        })
    }

    /// A user by stable id.
    pub fn user_by_id(&self, id: &str) -> Option<&Arc<User>> {
        self.users.values().find(|u| u.id == id)
    }
}

/// A stable, Okta-looking user id derived from the username.
pub fn user_id_for(username: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(username.as_bytes());
    let hex: String = digest.iter().take(9).map(|b| format!("{b:02x}")).collect();
    format!("00u{hex}")
}

fn insert_client(
    clients: &mut HashMap<String, Arc<Client>>,
    key: &str,
    client: Client,
) -> Result<(), ConfigError> {
    if client.client_id.trim().is_empty() {
        return Err(invalid(format!("{key}.client_id"), "must not be empty"));
    }
    let id = client.client_id.clone();
    if clients.insert(id.clone(), Arc::new(client)).is_some() {
        return Err(invalid(
            format!("{key}.client_id"),
            format!("duplicate client id {id:?}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
