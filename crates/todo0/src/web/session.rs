//! Sessions in an encrypted, authenticated cookie (ARCHITECTURE §5.1; AES-256-GCM via `cookie`'s
//! private jar, the cookie name bound as associated data) holding a random session id, the user
//! id, display name, a CSRF token and an expiry. Logging out records the session id (hashed) in
//! the store's ended sessions until the session would have expired, and every authenticated
//! request looks it up (`AppState::live_session`): a copy of the cookie taken before logout is
//! dead at once, across restarts too. The pre-login state (OIDC `state`, `nonce`,
//! PKCE verifier) travels in a second, short-lived encrypted cookie. Both are `HttpOnly`,
//! `SameSite=Lax`, `Path=/`, and `Secure` when the app is served over https.

use axum::http::HeaderMap;
use axum_extra::extract::PrivateCookieJar;
use protocol::UnixTime;
use protocol::constant_time;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use weblogin::{SessionKey, random_token};

use super::AppState;
use super::error::WebError;
use crate::domain::Owner;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "todo0_session";
/// The pre-login cookie's name.
pub const LOGIN_COOKIE: &str = "todo0_login";
/// How long a session lasts, in seconds.
pub const SESSION_LIFETIME: i64 = 8 * 3600;

/// A signed-in person, as kept in the session cookie (no `Debug`: it holds the CSRF token).
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Session {
    /// This session's random id (a new one every login); logout ends it server-side.
    pub(crate) sid: String,
    /// Whose todos: the ID token's `sub`.
    pub(crate) uid: String,
    /// A name to greet them by.
    pub(crate) name: String,
    /// The CSRF token every cookie-authenticated change must echo.
    pub(crate) csrf: String,
    /// When the session ends.
    pub(crate) exp: UnixTime,
    /// The login's ID token, sent back to the IdP as `id_token_hint` at logout (RP-Initiated
    /// Logout §2): without it the IdP must ask the person before ending their session. It stays
    /// inside the encrypted cookie and is never shown to the page.
    #[serde(
        default,
        serialize_with = "protocol::secret_serde::serialize_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) id_token: Option<secrecy::SecretString>,
}

impl Session {
    /// A new session (a new CSRF token every login).
    pub(crate) fn new(uid: String, name: String, now: UnixTime) -> Self {
        Self {
            sid: random_token(),
            uid,
            name,
            csrf: random_token(),
            exp: now + SESSION_LIFETIME,
            id_token: None,
        }
    }

    /// The owner of the session's todos.
    pub(crate) fn owner(&self) -> Result<Owner, crate::domain::TodoError> {
        Owner::new(self.uid.clone())
    }

    /// The key the store knows the session by once it has ended: the SHA-256 of its id.
    pub(crate) fn ended_key(&self) -> String {
        Sha256::digest(self.sid.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Whether `presented` is this session's CSRF token (constant time).
    pub(crate) fn is_csrf_token(&self, presented: Option<&str>) -> bool {
        presented.is_some_and(|p| constant_time::is_equal(p, &self.csrf))
    }
}

/// Reads and writes the two cookies.
#[derive(Clone)]
pub(crate) struct Cookies(weblogin::Cookies);

impl Cookies {
    pub(crate) fn new(key: &SessionKey, secure: bool) -> Self {
        Self(weblogin::Cookies::new(key, secure))
    }

    /// The shared cookie plumbing (jar, removal, the login's two halves).
    pub(crate) fn inner(&self) -> &weblogin::Cookies {
        &self.0
    }

    /// The request's cookies, for building a response.
    pub(crate) fn jar(&self, headers: &HeaderMap) -> PrivateCookieJar {
        self.0.jar(headers)
    }

    /// The unexpired session in `headers`, if any.
    pub(crate) fn session(&self, headers: &HeaderMap, now: UnixTime) -> Option<Session> {
        self.0
            .read_json::<Session>(headers, SESSION_COOKIE)
            .filter(|s| now < s.exp && !s.uid.is_empty() && !s.sid.is_empty())
    }

    /// Adds the session cookie.
    pub(crate) fn with_session(
        &self,
        jar: PrivateCookieJar,
        session: &Session,
    ) -> PrivateCookieJar {
        self.0
            .with_json(jar, SESSION_COOKIE, session, SESSION_LIFETIME)
    }

    /// Removes `name` from the browser.
    pub(crate) fn without(&self, jar: PrivateCookieJar, name: &'static str) -> PrivateCookieJar {
        self.0.without(jar, name)
    }
}

impl AppState {
    /// The request's session, unless it expired or was ended by a logout (a store lookup; a
    /// store that cannot answer fails the request rather than admit an ended session).
    pub(crate) async fn live_session(
        &self,
        headers: &HeaderMap,
    ) -> Result<Option<Session>, WebError> {
        let Some(session) = self.cookies.session(headers, self.clock.now()) else {
            return Ok(None);
        };
        if self.store.is_session_ended(&session.ended_key()).await? {
            tracing::info!(user = %session.uid, "a logged-out session's cookie was presented");
            return Ok(None);
        }
        Ok(Some(session))
    }

    /// Ends `session` server-side: its cookie, and every copy of it, is refused from now on.
    pub(crate) async fn end_session(&self, session: &Session) -> Result<(), WebError> {
        self.store
            .end_session(&session.ended_key(), session.exp, self.clock.now())
            .await?;
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use axum::http::header;

    fn key() -> SessionKey {
        SessionKey::from_secret(&SessionKey::generate_secret()).unwrap()
    }

    #[test]
    fn cookies_round_trip_only_under_the_same_key() {
        let cookies = Cookies::new(&key(), true);
        let session = Session::new("00u1".into(), "Alice".into(), 1_000);
        let jar = cookies.with_session(cookies.jar(&HeaderMap::new()), &session);
        let set = jar.get(SESSION_COOKIE).unwrap();
        assert!(set.http_only().unwrap_or(false));
        assert_eq!(
            set.same_site(),
            Some(axum_extra::extract::cookie::SameSite::Lax)
        );
        assert_eq!(set.secure(), Some(true));
        assert_eq!(set.path(), Some("/"));

        // What the browser sends back is the encrypted value of the Set-Cookie header.
        let response = axum::response::IntoResponse::into_response(jar);
        let set_cookie = response.headers()[header::SET_COOKIE].to_str().unwrap();
        let encrypted = set_cookie.split(';').next().unwrap().to_owned();
        assert!(!encrypted.contains("Alice"), "the value is encrypted");
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, encrypted.parse().unwrap());
        let read = cookies.session(&headers, 1_001).unwrap();
        assert_eq!(read.uid, "00u1");
        assert!(read.is_csrf_token(Some(&session.csrf)));
        assert!(!read.is_csrf_token(Some("nope")));
        assert!(!read.is_csrf_token(None));
        assert!(
            cookies
                .session(&headers, 1_000 + SESSION_LIFETIME)
                .is_none(),
            "expired"
        );
        assert!(
            Cookies::new(&key(), true)
                .session(&headers, 1_001)
                .is_none(),
            "another key cannot read it"
        );
    }
}
