//! Server-side sessions (ARCHITECTURE §5.1): the browser holds only an encrypted cookie with a
//! random session id (HttpOnly, SameSite=Lax, Secure on https); the ID token, refresh token and
//! claims stay here. A new id is issued at every login. An ID token about to expire is renewed
//! with the refresh token (one refresh at a time per session, since refresh tokens rotate);
//! without one, the session ends and the person logs in again — an expired ID token is never
//! used. Sessions live in memory: a restart asks everyone to log in again (their conversations
//! and todos are kept).

use std::collections::HashMap;
use std::sync::Arc;

use axum::http::HeaderMap;
use axum_extra::extract::PrivateCookieJar;
use protocol::{Clock, UnixTime};
use secrecy::SecretString;
use serde_json::Value;
use weblogin::{LoginTokens, RelyingParty, RpError, SessionKey, random_token};

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

struct Entry {
    session: std::sync::RwLock<Arc<Session>>,
    refreshing: tokio::sync::Mutex<()>,
}

/// The live sessions.
pub struct Sessions {
    entries: std::sync::RwLock<HashMap<String, Arc<Entry>>>,
    clock: Arc<dyn Clock>,
}

impl Sessions {
    /// No sessions yet.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            entries: std::sync::RwLock::new(HashMap::new()),
            clock,
        }
    }

    /// A new session for a completed login (a fresh id and CSRF token).
    pub fn create(&self, tokens: LoginTokens) -> Arc<Session> {
        let now = self.clock.now();
        let session = Arc::new(Session {
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
        });
        let entry = Arc::new(Entry {
            session: std::sync::RwLock::new(session.clone()),
            refreshing: tokio::sync::Mutex::new(()),
        });
        self.entries
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(session.id.clone(), entry);
        session
    }

    /// Ends session `id`.
    pub fn remove(&self, id: &str) -> Option<Arc<Session>> {
        let entry = self
            .entries
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id)?;
        let session = entry
            .session
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        Some(session)
    }

    /// How many sessions are live.
    pub fn len(&self) -> usize {
        self.entries.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Session `id` with an ID token that is valid for a while yet (renewed through `rp` when
    /// needed), or `None` when there is no such session or it cannot be kept up.
    pub async fn current(&self, id: &str, rp: &RelyingParty) -> Option<Arc<Session>> {
        let entry = self
            .entries
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()?;
        let now = self.clock.now();
        let session = entry
            .session
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if now >= session.expires_at {
            self.remove(id);
            return None;
        }
        if now + RENEW_MARGIN < session.id_token_expires_at {
            return Some(session);
        }
        let _one_refresh = entry.refreshing.lock().await;
        let session = entry
            .session
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if now + RENEW_MARGIN < session.id_token_expires_at {
            return Some(session); // another request renewed it meanwhile
        }
        let Some(refresh_token) = &session.refresh_token else {
            tracing::info!(user = %session.principal.subject, "ID token expired; session ended");
            self.remove(id);
            return None;
        };
        match rp.refresh(refresh_token).await {
            Ok(tokens) if tokens.identity.subject == session.principal.subject => {
                let renewed = Arc::new(Session {
                    principal: Principal {
                        id_token: tokens.id_token,
                        ..session.principal.clone()
                    },
                    claims: tokens.claims,
                    id_token_expires_at: tokens.id_token_expires_at,
                    refresh_token: tokens.refresh_token,
                    ..(*session).clone()
                });
                *entry.session.write().unwrap_or_else(|p| p.into_inner()) = renewed.clone();
                tracing::info!(user = %renewed.principal.subject, "ID token renewed");
                Some(renewed)
            }
            Ok(_) => {
                tracing::warn!("a refresh returned another subject; session ended");
                self.remove(id);
                None
            }
            Err(RpError::Unavailable) => {
                // Cannot renew now; the old token is expired or nearly so: do not use it.
                tracing::warn!("the IdP is unavailable for a refresh");
                None
            }
            Err(RpError::Refused(reason)) => {
                tracing::info!(%reason, "refresh refused; session ended");
                self.remove(id);
                None
            }
        }
    }
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
