//! The identity provider as one explicit value: configuration, authorization servers, storage
//! and clock (STYLE §5). Cloning is cheap.
//!
//! The directory (users, clients, agents, custom authorization servers) is a [`Directory`]
//! snapshot that the management API replaces as a whole ([`Idp::replace_directory`]): a request
//! works on the snapshot it started with, and a change takes effect for the next request without a
//! restart. Servers that stay keep their keys.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, RwLock};

use jsonwebtoken::jwk::JwkSet;
use protocol::Clock;
use protocol::keys::KeyKind;
use protocol::verify::{JwtVerifier, StaticKeys};

use crate::config::{Client, Config, ConfigError, ManagedEntries, User};
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
    /// The org authorization server.
    pub org: Arc<AuthServer>,
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
    /// Brokered consent: the vault key and the ISV HTTP client.
    pub sts: crate::sts::Sts,
    /// Where each server's keys live; `None` for ephemeral in-memory keys.
    keys_dir: Option<PathBuf>,
    /// The current directory. The lock is held only to clone or swap the `Arc`, never across I/O.
    directory: RwLock<Arc<Directory>>,
    /// The management API, once enabled with an admin token ([`crate::open`] does); until then
    /// every management request is refused as unauthenticated.
    admin: OnceLock<Arc<crate::admin::AdminService>>,
}

/// One snapshot of the directory: the validated configuration and what is derived from it.
pub struct Directory {
    /// Validated configuration (the file's entries plus the managed ones).
    pub config: Config,
    /// Custom authorization servers by id.
    pub servers: HashMap<String, Arc<AuthServer>>,
    client_verifiers: HashMap<String, JwtVerifier>,
}

impl Directory {
    /// A client by id.
    pub fn client(&self, client_id: &str) -> Option<Arc<Client>> {
        self.config.clients.get(client_id).cloned()
    }

    /// A user by stable id.
    pub fn user(&self, id: &str) -> Option<Arc<User>> {
        self.config.user_by_id(id).cloned()
    }

    /// The verifier for a client's registered keys.
    pub fn client_verifier(&self, client_id: &str) -> Option<&JwtVerifier> {
        self.client_verifiers.get(client_id)
    }
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

fn key_ring(keys_dir: Option<&Path>, name: &str, kind: KeyKind) -> anyhow::Result<KeyRing> {
    match keys_dir {
        Some(dir) => KeyRing::load_or_create(&dir.join(name), kind),
        None => KeyRing::ephemeral(kind),
    }
}

impl Idp {
    /// Assembles the IdP: loads or creates every server's keys.
    pub fn new(parts: IdpParts) -> anyhow::Result<Self> {
        let issuer = parts.issuer.trim_end_matches('/').to_owned();
        let org = Arc::new(AuthServer {
            issuer: issuer.clone(),
            keys: Arc::new(key_ring(
                parts.keys_dir.as_deref(),
                "org",
                parts.config.signing_alg,
            )?),
            custom: None,
        });
        let directory = build_directory(
            parts.config,
            &issuer,
            parts.keys_dir.as_deref(),
            &HashMap::new(),
            &parts.clock,
        )?;
        let config = &directory.config;
        Ok(Self(Arc::new(Inner {
            secure_cookies: issuer.starts_with("https://"),
            password_gate: PasswordGate::new(&config.login)?,
            login_throttle: LoginThrottle::new(&config.login, parts.store.clone()),
            csrf: match parts.keys_dir.as_deref() {
                Some(dir) => CsrfKey::load_or_create(dir)?,
                None => CsrfKey::random(),
            },
            sts: crate::sts::Sts::load(parts.keys_dir.as_deref())?,
            org,
            store: parts.store,
            clock: parts.clock,
            demo_credentials: parts.demo_credentials,
            keys_dir: parts.keys_dir,
            directory: RwLock::new(Arc::new(directory)),
            admin: OnceLock::new(),
        })))
    }

    /// The management API service, when enabled.
    pub fn admin(&self) -> Option<&Arc<crate::admin::AdminService>> {
        self.admin.get()
    }

    /// Enables the management API (once; a second call is ignored and answers `false`).
    pub fn enable_admin(&self, service: crate::admin::AdminService) -> bool {
        self.admin.set(Arc::new(service)).is_ok()
    }

    /// The current directory snapshot.
    pub fn directory(&self) -> Arc<Directory> {
        match self.directory.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replaces the managed part of the directory: the file's entries plus `managed` are
    /// validated together, new servers get keys, and the result serves the next request. On an
    /// error nothing changes.
    pub fn replace_directory(&self, managed: &ManagedEntries) -> Result<(), DirectoryError> {
        let next = self.prepare_directory(managed)?;
        self.install_directory(next);
        Ok(())
    }

    /// Validates the file's entries plus `managed` and builds the directory they make (new
    /// servers get keys), without serving it yet: the management API persists its document
    /// between this and [`Self::install_directory`].
    pub fn prepare_directory(&self, managed: &ManagedEntries) -> Result<Directory, DirectoryError> {
        let current = self.directory();
        let config = current.config.with_managed(managed)?;
        build_directory(
            config,
            &self.org.issuer,
            self.keys_dir.as_deref(),
            &current.servers,
            &self.clock,
        )
        .map_err(DirectoryError::Keys)
    }

    /// Removes the signing keys of custom server `id` from the data directory, once it is gone
    /// from the directory (a deleted server's private keys should not linger). Refuses to touch
    /// the keys of a server still served.
    pub fn delete_server_keys(&self, id: &str) -> std::io::Result<()> {
        if self.directory().servers.contains_key(id) {
            return Err(std::io::Error::other("the server is still served"));
        }
        let Some(dir) = &self.keys_dir else {
            return Ok(());
        };
        match std::fs::remove_dir_all(dir.join(format!("as-{id}"))) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Serves `next` from the next request on.
    pub fn install_directory(&self, next: Directory) {
        let mut slot = match self.directory.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        *slot = Arc::new(next);
    }

    /// The org issuer (base URL).
    pub fn issuer(&self) -> &str {
        &self.org.issuer
    }

    /// A server by id (`None` = org).
    pub fn server(&self, id: Option<&str>) -> Option<Arc<AuthServer>> {
        match id {
            None => Some(self.org.clone()),
            Some(id) => self.directory().servers.get(id).cloned(),
        }
    }

    /// A custom server by issuer.
    pub fn server_by_issuer(&self, issuer: &str) -> Option<Arc<AuthServer>> {
        self.directory()
            .servers
            .values()
            .find(|s| s.issuer == issuer)
            .cloned()
    }

    /// A client by id.
    pub fn client(&self, client_id: &str) -> Option<Arc<Client>> {
        self.directory().client(client_id)
    }

    /// A verifier for tokens signed by `server` (in process, no HTTP).
    pub fn verifier_for(&self, server: &AuthServer) -> JwtVerifier {
        JwtVerifier::new(server.keys.verifier_keys(), self.clock.clone())
    }

    /// A user by stable id.
    pub fn user(&self, id: &str) -> Option<Arc<User>> {
        self.directory().user(id)
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

/// Why a new directory was refused.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// The entries do not validate (names the entry and the key).
    #[error(transparent)]
    Invalid(#[from] ConfigError),
    /// A new server's keys could not be created.
    #[error("cannot create signing keys: {0:#}")]
    Keys(anyhow::Error),
}

fn build_directory(
    config: Config,
    issuer: &str,
    keys_dir: Option<&Path>,
    previous: &HashMap<String, Arc<AuthServer>>,
    clock: &Arc<dyn Clock>,
) -> anyhow::Result<Directory> {
    let mut servers = HashMap::new();
    for custom in &config.servers {
        // A kept server keeps its ring unless its signing algorithm changed.
        let keys = match previous.get(&custom.id) {
            Some(kept) if kept.keys.kind() == custom.signing_alg => kept.keys.clone(),
            _ => Arc::new(key_ring(
                keys_dir,
                &format!("as-{}", custom.id),
                custom.signing_alg,
            )?),
        };
        let server = AuthServer {
            issuer: format!("{issuer}/oauth2/{}", custom.id),
            keys,
            custom: Some(custom.clone()),
        };
        servers.insert(custom.id.clone(), Arc::new(server));
    }
    let client_verifiers = config
        .clients
        .values()
        .filter_map(|c| {
            let jwks: &JwkSet = c.jwks.as_ref()?;
            let keys = Arc::new(StaticKeys::new(jwks));
            Some((c.client_id.clone(), JwtVerifier::new(keys, clock.clone())))
        })
        .collect();
    Ok(Directory {
        config,
        servers,
        client_verifiers,
    })
}
