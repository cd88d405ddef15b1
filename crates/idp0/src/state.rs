//! The identity provider as one explicit value: configuration, authorization servers, storage
//! and clock (STYLE §5). Cloning is cheap.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use jsonwebtoken::jwk::JwkSet;
use protocol::Clock;
use protocol::verify::{JwtVerifier, StaticKeys};

use crate::config::{Client, Config, User};
use crate::csrf::CsrfKey;
use crate::keyring::KeyRing;
use crate::login_guard::{LoginThrottle, PasswordGate};
use crate::server::AuthServer;
use crate::store::Store;

/// Everything a request handler needs.
#[derive(Clone)]
pub struct Idp(Arc<Inner>);

/// The shared state behind [`Idp`].
pub struct Inner {
    /// Validated configuration.
    pub config: Config,
    /// The org authorization server.
    pub org: Arc<AuthServer>,
    /// Custom authorization servers by id.
    pub servers: HashMap<String, Arc<AuthServer>>,
    /// Durable state.
    pub store: Arc<dyn Store>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Demo credentials shown on the login page in development configurations.
    pub demo_credentials: Vec<(String, String)>,
    /// Whether cookies get `Secure` (issuer is https).
    pub secure_cookies: bool,
    /// At most a fixed number of password checks at once.
    pub password_gate: PasswordGate,
    /// Failed-login counters per account and client address.
    pub login_throttle: LoginThrottle,
    /// Key of the anti-CSRF tokens of idp0's forms.
    pub csrf: CsrfKey,
    client_verifiers: HashMap<String, JwtVerifier>,
}

impl std::ops::Deref for Idp {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// How to build an [`Idp`].
pub struct IdpParts {
    /// Validated configuration.
    pub config: Config,
    /// Base URL = org issuer, without a trailing slash.
    pub issuer: String,
    /// Storage.
    pub store: Arc<dyn Store>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Where each server's keys live; `None` for ephemeral in-memory keys.
    pub keys_dir: Option<std::path::PathBuf>,
    /// Demo credentials for the login page.
    pub demo_credentials: Vec<(String, String)>,
}

impl Idp {
    /// Assembles the IdP: loads or creates every server's keys.
    pub fn new(parts: IdpParts) -> anyhow::Result<Self> {
        let issuer = parts.issuer.trim_end_matches('/').to_owned();
        let ring = |name: &str| -> anyhow::Result<KeyRing> {
            match &parts.keys_dir {
                Some(dir) => KeyRing::load_or_create(&dir.join(name)),
                None => KeyRing::ephemeral(),
            }
        };
        let org = Arc::new(AuthServer {
            issuer: issuer.clone(),
            keys: ring("org")?,
            custom: None,
        });
        let mut servers = HashMap::new();
        for custom in &parts.config.servers {
            let server = AuthServer {
                issuer: format!("{issuer}/oauth2/{}", custom.id),
                keys: ring(&format!("as-{}", custom.id))?,
                custom: Some(custom.clone()),
            };
            servers.insert(custom.id.clone(), Arc::new(server));
        }
        let client_verifiers = parts
            .config
            .clients
            .values()
            .filter_map(|c| {
                let jwks: &JwkSet = c.jwks.as_ref()?;
                let keys = Arc::new(StaticKeys::new(jwks));
                Some((
                    c.client_id.clone(),
                    JwtVerifier::new(keys, parts.clock.clone()),
                ))
            })
            .collect();
        Ok(Self(Arc::new(Inner {
            secure_cookies: issuer.starts_with("https://"),
            password_gate: PasswordGate::new(&parts.config.login)?,
            login_throttle: LoginThrottle::new(&parts.config.login, parts.config.users.len()),
            csrf: CsrfKey::random(),
            config: parts.config,
            org,
            servers,
            store: parts.store,
            clock: parts.clock,
            demo_credentials: parts.demo_credentials,
            client_verifiers,
        })))
    }

    /// The org issuer (base URL).
    pub fn issuer(&self) -> &str {
        &self.org.issuer
    }

    /// A server by id (`None` = org).
    pub fn server(&self, id: Option<&str>) -> Option<Arc<AuthServer>> {
        match id {
            None => Some(self.org.clone()),
            Some(id) => self.servers.get(id).cloned(),
        }
    }

    /// A custom server by issuer.
    pub fn server_by_issuer(&self, issuer: &str) -> Option<Arc<AuthServer>> {
        self.servers.values().find(|s| s.issuer == issuer).cloned()
    }

    /// A client by id.
    pub fn client(&self, client_id: &str) -> Option<&Client> {
        self.config.clients.get(client_id)
    }

    /// The verifier for a client's registered keys.
    pub fn client_verifier(&self, client_id: &str) -> Option<&JwtVerifier> {
        self.client_verifiers.get(client_id)
    }

    /// A verifier for tokens signed by `server` (in process, no HTTP).
    pub fn verifier_for(&self, server: &AuthServer) -> JwtVerifier {
        JwtVerifier::new(server.keys.verifier_keys(), self.clock.clone())
    }

    /// A user by stable id.
    pub fn user(&self, id: &str) -> Option<&User> {
        self.config.user_by_id(id)
    }

    /// Reads the demo credentials file, if present.
    pub fn read_demo_credentials(path: &Path) -> Vec<(String, String)> {
        std::fs::read_to_string(path)
            .map(|text| {
                text.lines()
                    .filter_map(|line| line.split_once(':'))
                    .map(|(u, p)| (u.to_owned(), p.to_owned()))
                    .collect()
            })
            .unwrap_or_default()
    }
}
