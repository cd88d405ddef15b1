//! idp0's management API: the subset of Okta's that `secure-agent okta bootstrap | validate |
//! rollback` use (OKTA.md §4), authenticated by `Authorization: SSWS <admin token>`, with Okta's
//! JSON shapes, status codes, `Link` pagination and error bodies.
//!
//! * [`model`]: the resources, kept as one document in the store; [`translate`]: what they make
//!   of idp0's directory.
//! * Handlers: [`authorization_servers`], [`apps`], [`agents`], [`misc`] (users/me, org, trusted
//!   origins, resource owners, operations).
//!
//! Every change is serialized by one async mutex, held only around the local store write: the
//! new document is translated and validated together with the configuration file's entries (an
//! invalid result is a 400 naming the object, nothing stored), persisted with the store's
//! optimistic version, and only then served ([`crate::Idp::install_directory`]), so what is
//! created takes effect for the very next request, without a restart. Reads work on a snapshot.

mod agents;
mod apps;
mod authorization_servers;
mod error;
mod ids;
mod misc;
mod model;
mod rate;
mod translate;
mod wire;

use std::path::Path;
use std::sync::{Arc, RwLock};

use anyhow::Context;
use axum::Router;
use axum::routing::{any, get, post};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

pub use error::AdminError;
use model::Document;
pub use rate::RateWindow;

use crate::state::{DirectoryError, Idp};

/// The admin token's file in the data directory (0600).
pub const TOKEN_FILE: &str = "idp0-admin-token";

/// The management API of one idp0.
pub struct AdminService {
    /// SHA-256 of the admin token: compared in constant time, fixed length.
    token_digest: [u8; 32],
    org_id: String,
    /// The stored document and its version; locked for the whole of a change.
    stored: tokio::sync::Mutex<Stored>,
    /// What reads see: the last stored document.
    snapshot: RwLock<Arc<Document>>,
    /// Okta's rate limit over the admin's requests.
    rate: rate::RateLimiter,
    /// The same limit over requests without the admin token, counted apart so that a flood of
    /// guesses neither goes unbounded nor uses up the admin's quota.
    rate_unauthenticated: rate::RateLimiter,
}

struct Stored {
    version: i64,
    doc: Document,
}

impl std::fmt::Debug for AdminService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminService")
            .field("org_id", &self.org_id)
            .finish_non_exhaustive()
    }
}

/// Reads the admin token from `<data_dir>/idp0-admin-token`, creating it (0600) on first start;
/// loads the stored management document and serves it; enables the management API.
pub async fn enable(idp: &Idp, data_dir: &Path) -> anyhow::Result<()> {
    let token = load_or_create_token(&data_dir.join(TOKEN_FILE))?;
    let stored = idp
        .store
        .find_managed_directory()
        .await
        .context("reading the management API's directory from the store")?;
    let (version, doc) = match stored {
        Some((version, body)) => {
            let doc: Document = serde_json::from_str(&body).with_context(|| {
                "the management API's directory in idp0's database is not readable (the stored \
                 JSON does not parse); restore the database from a backup or start with a new one"
                    .to_owned()
            })?;
            (version, doc)
        }
        None => (0, Document::default()),
    };
    if version > 0 {
        let directory = prepare(idp, &doc).map_err(|e| {
            anyhow::anyhow!(
                "the objects created through the management API no longer fit the configuration \
                 file: {}. Fix: restore the configuration entry they refer to (or remove the \
                 entry that collides with them), then start idp0 again",
                match &e {
                    AdminError::Validation { causes, .. } => causes.join("; "),
                    other => other.to_string(),
                }
            )
        })?;
        idp.install_directory(directory);
    }
    let service = AdminService::new(&token, idp.issuer(), version, doc);
    idp.enable_admin(service);
    Ok(())
}

/// How often the stored document is checked for changes made by another idp0 on the same
/// database.
const FOLLOW_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);

/// Replicas share one database: a change made through another replica's management API (a
/// deactivated agent key, a removed assignment) must take effect here too, not at the next
/// restart. Checks the stored version every [`FOLLOW_INTERVAL`] and serves a newer document;
/// runs while idp0 serves ([`crate::serve`] stops it).
pub(crate) async fn follow_other_writers(idp: Idp) {
    let mut every = tokio::time::interval(FOLLOW_INTERVAL);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let Some(admin) = idp.admin() else { return };
        if let Err(e) = admin.refresh(&idp).await {
            tracing::warn!(error = %e, "reading the management API's directory failed");
        }
    }
}

fn load_or_create_token(path: &Path) -> anyhow::Result<SecretString> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            warn_if_readable_by_others(path);
            let token = text.trim().to_owned();
            if token.len() < 40 {
                anyhow::bail!(
                    "{} holds no admin token (it needs 40 or more characters); delete it and \
                     start idp0 again to create a new one",
                    path.display()
                );
            }
            Ok(SecretString::from(token))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // Okta's API tokens are 42 characters starting with "00".
            let token = format!("00{}", ids::random_alnum(40));
            crate::fsutil::write_private(path, &format!("{token}\n"))
                .with_context(|| format!("writing {}", path.display()))?;
            Ok(SecretString::from(token))
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// The token file should be the owner's alone (it is written 0600); a looser mode is reported,
/// not silently kept.
fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(
                file = %path.display(),
                "the admin token file is readable by others: run `chmod 600` on it"
            );
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

impl AdminService {
    fn new(token: &SecretString, issuer: &str, version: i64, doc: Document) -> Self {
        Self {
            token_digest: Sha256::digest(token.expose_secret().as_bytes()).into(),
            org_id: ids::org_id(issuer),
            snapshot: RwLock::new(Arc::new(doc.clone())),
            stored: tokio::sync::Mutex::new(Stored { version, doc }),
            rate: rate::RateLimiter::new(rate::LIMIT_PER_MINUTE),
            rate_unauthenticated: rate::RateLimiter::new(rate::LIMIT_PER_MINUTE),
        }
    }

    /// Whether `presented` is the admin token (constant time over the digests).
    pub(crate) fn is_admin_token(&self, presented: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        protocol::constant_time::is_equal(digest, self.token_digest)
    }

    /// The org id (`00o…`).
    pub(crate) fn org_id(&self) -> &str {
        &self.org_id
    }

    /// The current document.
    pub(crate) fn document(&self) -> Arc<Document> {
        match self.snapshot.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Applies `change` to a copy of the document; when it succeeds and the result makes a valid
    /// directory, stores it and serves it. Nothing changes otherwise.
    pub(crate) async fn mutate<R>(
        &self,
        idp: &Idp,
        change: impl FnOnce(&mut Document) -> Result<R, AdminError>,
    ) -> Result<R, AdminError> {
        let mut stored = self.stored.lock().await;
        let mut doc = stored.doc.clone();
        let out = change(&mut doc)?;
        let directory = prepare(idp, &doc)?;
        let body = serde_json::to_string(&doc)?;
        if !idp
            .store
            .replace_managed_directory(stored.version, &body)
            .await?
        {
            // Another replica wrote first: serve what it wrote, so the retry the 409 asks for
            // applies to the current document (instead of conflicting until a restart).
            self.reload(idp, &mut stored).await?;
            return Err(AdminError::Conflict);
        }
        let version = stored.version + 1;
        self.install(idp, &mut stored, version, doc, directory);
        Ok(out)
    }

    /// Serves the stored document when another writer (a replica on the same database) has
    /// stored a newer version than the one served.
    pub(crate) async fn refresh(&self, idp: &Idp) -> Result<(), AdminError> {
        let mut stored = self.stored.lock().await;
        self.reload(idp, &mut stored).await
    }

    async fn reload(&self, idp: &Idp, stored: &mut Stored) -> Result<(), AdminError> {
        let Some((version, body)) = idp.store.find_managed_directory().await? else {
            return Ok(());
        };
        if version <= stored.version {
            return Ok(());
        }
        let doc: Document = serde_json::from_str(&body)?;
        let directory = prepare(idp, &doc)?;
        self.install(idp, stored, version, doc, directory);
        Ok(())
    }

    fn install(
        &self,
        idp: &Idp,
        stored: &mut Stored,
        version: i64,
        doc: Document,
        directory: crate::state::Directory,
    ) {
        idp.install_directory(directory);
        let snapshot = Arc::new(doc.clone());
        stored.version = version;
        stored.doc = doc;
        match self.snapshot.write() {
            Ok(mut guard) => *guard = snapshot,
            Err(poisoned) => *poisoned.into_inner() = snapshot,
        }
    }
}

/// The directory `doc` makes with the configuration file's entries, validated.
fn prepare(idp: &Idp, doc: &Document) -> Result<crate::state::Directory, AdminError> {
    let current = idp.directory();
    let seed = current.config.seed();
    let managed = translate::managed_entries(doc, seed);
    idp.prepare_directory(&managed).map_err(|e| match e {
        DirectoryError::Invalid(error) => AdminError::Validation {
            summary: "the resulting directory is invalid".into(),
            causes: vec![translate::describe(&error, &managed, seed)],
        },
        DirectoryError::Keys(error) => AdminError::Keys(format!("{error:#}")),
    })
}

/// The management API's routes, behind the rate limit; every other path under its prefixes
/// answers Okta's 404.
pub(crate) fn router(idp: &Idp) -> Router<Idp> {
    use agents as ag;
    use apps as ap;
    use authorization_servers as az;
    let api = Router::new()
        .route(
            "/authorizationServers",
            get(az::list_servers).post(az::create_server),
        )
        .route(
            "/authorizationServers/{id}",
            get(az::get_server)
                .put(az::update_server)
                .delete(az::delete_server),
        )
        .route(
            "/authorizationServers/{id}/lifecycle/{action}",
            post(az::post_server_lifecycle),
        )
        .route(
            "/authorizationServers/{id}/scopes",
            get(az::list_scopes).post(az::create_scope),
        )
        .route(
            "/authorizationServers/{id}/scopes/{scope}",
            get(az::get_scope).delete(az::delete_scope),
        )
        .route(
            "/authorizationServers/{id}/policies",
            get(az::list_policies).post(az::create_policy),
        )
        .route(
            "/authorizationServers/{id}/policies/{policy}",
            get(az::get_policy).delete(az::delete_policy),
        )
        .route(
            "/authorizationServers/{id}/policies/{policy}/rules",
            get(az::list_rules).post(az::create_rule),
        )
        .route(
            "/authorizationServers/{id}/policies/{policy}/rules/{rule}",
            get(az::get_rule).delete(az::delete_rule),
        )
        .route("/apps", get(ap::list_apps).post(ap::create_app))
        .route("/apps/{id}", get(ap::get_app).delete(ap::delete_app))
        .route(
            "/apps/{id}/lifecycle/{action}",
            post(ap::post_app_lifecycle),
        )
        .route(
            "/apps/{id}/users",
            get(ap::list_app_users).post(ap::assign_app_user),
        )
        .route(
            "/apps/{id}/users/{user}",
            get(ap::get_app_user).delete(ap::delete_app_user),
        )
        .route("/users/me", get(misc::get_me))
        .route("/org", get(misc::get_org))
        .route(
            "/trustedOrigins",
            get(misc::list_trusted_origins).post(misc::create_trusted_origin),
        )
        .route(
            "/trustedOrigins/{id}",
            get(misc::get_trusted_origin).delete(misc::delete_trusted_origin),
        )
        .route(
            "/trustedOrigins/{id}/lifecycle/{action}",
            post(misc::post_trusted_origin_lifecycle),
        )
        .fallback(misc::not_found);
    let workload = Router::new()
        .route("/ai-agents", get(ag::list_agents).post(ag::create_agent))
        .route(
            "/ai-agents/{id}",
            get(ag::get_agent).delete(ag::delete_agent),
        )
        .route(
            "/ai-agents/{id}/lifecycle/{action}",
            post(ag::post_agent_lifecycle),
        )
        .route(
            "/ai-agents/{id}/credentials/jwks",
            get(ag::list_keys).post(ag::create_key),
        )
        .route(
            "/ai-agents/{id}/credentials/jwks/{key}",
            get(ag::get_key).delete(ag::delete_key),
        )
        .route(
            "/ai-agents/{id}/connections",
            get(ag::list_connections).post(ag::create_connection),
        )
        .route(
            "/ai-agents/{id}/connections/{connection}",
            get(ag::get_connection).delete(ag::delete_connection),
        )
        .route(
            "/ai-agents/{id}/connections/{connection}/lifecycle/{action}",
            post(ag::post_connection_lifecycle),
        )
        .route("/operations/{id}", get(misc::get_operation))
        .fallback(misc::not_found);
    let governance = Router::new()
        .route("/resource-owners", post(misc::put_resource_owners))
        .fallback(misc::not_found);
    Router::new()
        .nest("/api/v1", api)
        .nest("/workload-principals/api/v1", workload)
        .nest("/governance/api/v1", governance)
        .route("/api/{*rest}", any(misc::not_found))
        .route("/workload-principals/{*rest}", any(misc::not_found))
        .route("/governance/{*rest}", any(misc::not_found))
        .layer(axum::middleware::from_fn_with_state(
            idp.clone(),
            rate::limit,
        ))
}
