//! Server-side sessions (ARCHITECTURE §5.1): the browser holds only an encrypted cookie with a
//! random session id (HttpOnly, SameSite=Lax, Secure on https); the ID token, refresh token and
//! claims stay here. A new id is issued at every login. An ID token about to expire is renewed
//! with the refresh token (one refresh at a time per session, since refresh tokens rotate);
//! without one, the session ends and the person logs in again — an expired ID token is never
//! used. Sessions live in a [`SessionStore`]: in memory by default (a restart asks everyone to
//! log in again; their conversations and todos are kept), or in Redis, shared by every replica
//! (a person logged in through one replica is logged in at all of them). One refresh runs at a
//! time per session across replicas (a lease), so a rotated refresh token is never used twice.

mod store;

use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderMap;
use axum_extra::extract::PrivateCookieJar;
use protocol::{Clock, UnixTime};
use secrecy::SecretString;
use serde_json::Value;
use weblogin::{LoginTokens, RelyingParty, RpError, SessionKey, random_token};

pub use self::store::{MemorySessionStore, SESSION_CAPACITY, SessionStore, StoredSession};
use crate::shared::{Leases, SharedStateError, Turn, lead_or_follow};
use crate::single_flight::KeyedLocks;
use crate::tokens::Principal;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "agent0_session";
/// The pre-login cookie's name.
pub const LOGIN_COOKIE: &str = "agent0_login";
/// How long a session lasts at most, in seconds.
pub const SESSION_LIFETIME: i64 = 8 * 3600;
/// An ID token is renewed this many seconds before it expires.
const RENEW_MARGIN: i64 = 60;

/// A signed-in person (no `Debug`: it holds tokens).
#[derive(Clone)]
pub struct Session {
    /// The session id (the cookie's content).
    pub id: String,
    /// Who, with their ID token.
    pub principal: Principal,
    /// The ID token's claims (for the claims viewer).
    pub claims: Value,
    /// When the ID token expires.
    pub id_token_expires_at: UnixTime,
    /// The refresh token, when the IdP issued one.
    pub refresh_token: Option<SecretString>,
    /// The CSRF token every state-changing request must echo.
    pub csrf: String,
    /// When the session ends regardless.
    pub expires_at: UnixTime,
}

/// How long a replica may hold a session's refresh before others take over: twice the token
/// endpoint's 15 s timeout, so a slow refresh finishes before anyone could reuse its (rotated)
/// refresh token.
const REFRESH_LEASE: Duration = Duration::from_secs(30);

/// The live sessions, kept in a [`SessionStore`] (in process, or Redis for several replicas).
pub struct Sessions {
    store: Arc<dyn SessionStore>,
    leases: Arc<dyn Leases>,
    refreshing: KeyedLocks<String>,
    clock: Arc<dyn Clock>,
}

impl Sessions {
    /// Sessions kept in `store`, refreshed one at a time per session across every replica that
    /// shares `leases`.
    pub fn new(
        store: Arc<dyn SessionStore>,
        leases: Arc<dyn Leases>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            store,
            leases,
            refreshing: KeyedLocks::new(),
            clock,
        }
    }

    /// A new session for a completed login (a fresh id and CSRF token).
    pub async fn create(&self, tokens: LoginTokens) -> Result<Arc<Session>, SharedStateError> {
        let now = self.clock.now();
        let session = Session {
            id: random_token(),
            principal: Principal {
                subject: tokens.identity.subject,
                name: tokens.identity.name,
                email: tokens.identity.email,
                id_token: tokens.id_token,
            },
            claims: tokens.claims,
            id_token_expires_at: tokens.id_token_expires_at,
            refresh_token: tokens.refresh_token,
            csrf: random_token(),
            expires_at: now + SESSION_LIFETIME,
        };
        self.store.create(&session).await?;
        Ok(Arc::new(session))
    }

    /// Ends session `id`.
    pub async fn remove(&self, id: &str) -> Result<(), SharedStateError> {
        self.store.delete(id).await
    }

    /// Ends session `id`, logging (not returning) a failure: for paths that end a session on
    /// the way to another answer.
    pub async fn remove_or_log(&self, id: &str) {
        if let Err(e) = self.remove(id).await {
            tracing::warn!(error = %e, "a session could not be ended");
        }
    }

    /// How many sessions are live, when the store can say.
    pub async fn count(&self) -> Option<u64> {
        self.store.count().await
    }

    /// Session `id` with an ID token that is valid for a while yet (renewed through `rp` when
    /// needed), or `None` when there is no such session or it cannot be kept up. One refresh at
    /// a time per session, in this process (a per-id lock) and across replicas (a lease), since
    /// refresh tokens rotate: the others wait for the renewed session.
    pub async fn current(
        &self,
        id: &str,
        rp: &RelyingParty,
    ) -> Result<Option<Arc<Session>>, SharedStateError> {
        let now = self.clock.now();
        let Some(session) = self.store.find(id).await? else {
            return Ok(None);
        };
        if now >= session.expires_at {
            self.store.delete(id).await?;
            return Ok(None);
        }
        if is_fresh(&session, now) {
            return Ok(Some(session));
        }
        let _one_refresh = self.refreshing.lock(id.to_owned()).await;
        let lease_name = format!("session:{}", crate::shared::redis::hashed(id));
        let renewed_elsewhere = || async {
            Ok(match self.store.find(id).await? {
                Some(s) if is_fresh(&s, now) => Some(Some(s)),
                Some(_) => None,
                None => Some(None),
            })
        };
        let lease = match lead_or_follow(
            &self.leases,
            &lease_name,
            REFRESH_LEASE,
            "renewing this session",
            renewed_elsewhere,
        )
        .await?
        {
            Turn::Done(session) => return Ok(session),
            Turn::Lead(lease) => lease,
        };
        let outcome = self.renew(id, session, rp).await;
        if let Err(e) = lease.release().await {
            // The renewal stands; the lease expires by itself.
            tracing::warn!(error = %e, "a session's refresh lease could not be released");
        }
        outcome
    }

    /// Renews `session`'s ID token with its refresh token (the caller holds its lease).
    async fn renew(
        &self,
        id: &str,
        session: Arc<Session>,
        rp: &RelyingParty,
    ) -> Result<Option<Arc<Session>>, SharedStateError> {
        // The lease holder reads the latest record: another replica may have rotated the
        // refresh token before this one got the lease.
        let session = Arc::unwrap_or_clone(self.store.find(id).await?.unwrap_or(session));
        let Some(refresh_token) = &session.refresh_token else {
            tracing::info!(user = %session.principal.subject, "ID token expired; session ended");
            self.store.delete(id).await?;
            return Ok(None);
        };
        match rp.refresh(refresh_token).await {
            Ok(tokens) if tokens.identity.subject == session.principal.subject => {
                let renewed = Session {
                    principal: Principal {
                        id_token: tokens.id_token,
                        ..session.principal.clone()
                    },
                    claims: tokens.claims,
                    id_token_expires_at: tokens.id_token_expires_at,
                    refresh_token: tokens.refresh_token,
                    ..session
                };
                self.store.update(&renewed).await?;
                tracing::info!(user = %renewed.principal.subject, "ID token renewed");
                Ok(Some(Arc::new(renewed)))
            }
            Ok(_) => {
                tracing::warn!("a refresh returned another subject; session ended");
                self.store.delete(id).await?;
                Ok(None)
            }
            Err(RpError::Unavailable) => {
                // Cannot renew now; the old token is expired or nearly so: do not use it.
                tracing::warn!("the IdP is unavailable for a refresh");
                Ok(None)
            }
            Err(RpError::Refused(reason)) => {
                tracing::info!(%reason, "refresh refused; session ended");
                self.store.delete(id).await?;
                Ok(None)
            }
        }
    }
}

/// Whether `session`'s ID token is good for a while yet at `now`.
fn is_fresh(session: &Session, now: UnixTime) -> bool {
    now + RENEW_MARGIN < session.id_token_expires_at
}

/// Reads and writes agent0's two cookies.
#[derive(Clone)]
pub struct Cookies(weblogin::Cookies);

impl Cookies {
    /// Cookies under `key`, `Secure` when `secure`.
    pub fn new(key: &SessionKey, secure: bool) -> Self {
        Self(weblogin::Cookies::new(key, secure))
    }

    /// The shared cookie plumbing (jar, removal, the login's two halves).
    pub fn inner(&self) -> &weblogin::Cookies {
        &self.0
    }

    /// The request's cookies.
    pub fn jar(&self, headers: &HeaderMap) -> PrivateCookieJar {
        self.0.jar(headers)
    }

    /// The session id in `headers`, if any.
    pub fn session_id(&self, headers: &HeaderMap) -> Option<String> {
        self.0.read(headers, SESSION_COOKIE)
    }

    /// Adds the session cookie for `id`.
    pub fn with_session(&self, jar: PrivateCookieJar, id: &str) -> PrivateCookieJar {
        self.0
            .with(jar, SESSION_COOKIE, id.to_owned(), SESSION_LIFETIME)
    }

    /// Removes `name` from the browser.
    pub fn without(&self, jar: PrivateCookieJar, name: &'static str) -> PrivateCookieJar {
        self.0.without(jar, name)
    }
}
