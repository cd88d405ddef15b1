//! The web apps' cookies (ARCHITECTURE §5.1): encrypted and authenticated with the app's
//! [`SessionKey`] (AES-256-GCM through `cookie`'s private jar, the cookie's name bound as
//! associated data), `HttpOnly`, `SameSite=Lax`, `Path=/`, and `Secure` when the app is served
//! over https. Also the two halves of a login that go through cookies: [`Cookies::start_login`]
//! (the redirect to the IdP, with the pending login in a short-lived cookie) and
//! [`Cookies::finish_login`] (the callback checked against it, the code redeemed).

use axum_extra::extract::PrivateCookieJar;
use axum_extra::extract::cookie::{Cookie, Key, SameSite};
use http::HeaderMap;
use protocol::UnixTime;
use serde::Serialize;
use serde::de::DeserializeOwned;
use url::Url;

use crate::SessionKey;
use crate::{CallbackParams, LOGIN_LIFETIME, LoginTokens, PendingLogin, RelyingParty, RpError};

/// Reads and writes an app's cookies.
#[derive(Clone)]
pub struct Cookies {
    key: Key,
    secure: bool,
}

impl Cookies {
    /// Cookies under `key`, `Secure` when `secure`.
    pub fn new(key: &SessionKey, secure: bool) -> Self {
        Self {
            key: key.key().clone(),
            secure,
        }
    }

    /// The request's cookies, for building a response (a cookie can only be removed from the
    /// browser through a jar that saw it arrive).
    pub fn jar(&self, headers: &HeaderMap) -> PrivateCookieJar {
        PrivateCookieJar::from_headers(headers, self.key.clone())
    }

    /// The decrypted value of cookie `name`, if present and authentic (of several so named,
    /// the last authentic one, as [`Self::jar`] would keep).
    ///
    /// Only that cookie is decrypted: a jar built from the headers decrypts every cookie the
    /// request carries and encrypts each again (with a fresh nonce) to hold it, three AES-GCM
    /// operations per cookie where reading one needs one.
    pub fn read(&self, headers: &HeaderMap, name: &str) -> Option<String> {
        let jar = cookie::CookieJar::new();
        let private = jar.private(&self.key);
        headers
            .get_all(http::header::COOKIE)
            .into_iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(';'))
            .filter_map(|pair| Cookie::parse_encoded(pair.to_owned()).ok())
            .filter(|cookie| cookie.name() == name)
            .filter_map(|cookie| private.decrypt(cookie))
            .next_back()
            .map(|cookie| cookie.value().to_owned())
    }

    /// Cookie `name` as JSON, if present, authentic and well-formed.
    pub fn read_json<T: DeserializeOwned>(&self, headers: &HeaderMap, name: &str) -> Option<T> {
        serde_json::from_str(&self.read(headers, name)?).ok()
    }

    /// Adds cookie `name` = `value` for `max_age` seconds.
    pub fn with(
        &self,
        jar: PrivateCookieJar,
        name: &'static str,
        value: String,
        max_age: i64,
    ) -> PrivateCookieJar {
        let mut cookie = self.with_attributes(Cookie::new(name, value));
        cookie.set_max_age(time::Duration::seconds(max_age));
        jar.add(cookie)
    }

    /// Adds cookie `name` holding `value` as JSON.
    pub fn with_json<T: Serialize>(
        &self,
        jar: PrivateCookieJar,
        name: &'static str,
        value: &T,
        max_age: i64,
    ) -> PrivateCookieJar {
        // Serialising the apps' plain structs cannot fail; an empty value would not decode.
        let value = serde_json::to_string(value).unwrap_or_default();
        self.with(jar, name, value, max_age)
    }

    /// Removes `name` from the browser.
    pub fn without(&self, jar: PrivateCookieJar, name: &'static str) -> PrivateCookieJar {
        jar.remove(self.with_attributes(Cookie::new(name, "")))
    }

    /// The unexpired pending login in cookie `name`, if any.
    pub fn pending_login(
        &self,
        headers: &HeaderMap,
        name: &str,
        now: UnixTime,
    ) -> Option<PendingLogin> {
        self.read_json::<PendingLogin>(headers, name)
            .filter(|p| now < p.exp)
    }

    /// Begins a login at `rp` (with `extra_scopes`): the IdP URL to redirect to, and the jar
    /// carrying the pending login in cookie `name`.
    pub fn start_login(
        &self,
        rp: &RelyingParty,
        headers: &HeaderMap,
        name: &'static str,
        now: UnixTime,
        extra_scopes: &[&str],
    ) -> (PrivateCookieJar, Url) {
        let (url, pending) = rp.begin(now, extra_scopes);
        let jar = self.with_json(self.jar(headers), name, &pending, LOGIN_LIFETIME);
        (jar, url)
    }

    /// Completes a login: `params` checked against the pending login in cookie `name` (which the
    /// caller removes whatever the outcome), then the code redeemed and the ID token verified.
    pub async fn finish_login(
        &self,
        rp: &RelyingParty,
        headers: &HeaderMap,
        name: &str,
        now: UnixTime,
        params: CallbackParams,
    ) -> Result<LoginTokens, RpError> {
        let pending = self.pending_login(headers, name, now).ok_or_else(|| {
            RpError::Refused(
                "no login is in progress in this browser (or it took over 10 minutes); log in again"
                    .into(),
            )
        })?;
        let code = params
            .code_for(&pending, rp.issuer())
            .map_err(RpError::Refused)?;
        rp.finish(code, pending).await
    }

    fn with_attributes(&self, mut cookie: Cookie<'static>) -> Cookie<'static> {
        cookie.set_path("/");
        cookie.set_http_only(true);
        cookie.set_same_site(SameSite::Lax);
        cookie.set_secure(self.secure);
        cookie
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use axum_extra::extract::PrivateCookieJar;
    use http::HeaderMap;
    use http::header::COOKIE;
    use secrecy::SecretString;

    use super::Cookies;
    use crate::SessionKey;

    fn cookies() -> Cookies {
        let secret = SecretString::from("ab".repeat(32));
        Cookies::new(&SessionKey::from_secret(&secret).unwrap(), false)
    }

    /// `name=<sealed value>` as a browser sends it back.
    fn sealed(cookies: &Cookies, name: &'static str, value: &str) -> String {
        let mut jar = cookie::CookieJar::new();
        jar.private_mut(&cookies.key)
            .add(cookie::Cookie::new(name, value.to_owned()));
        format!("{name}={}", jar.get(name).unwrap().value())
    }

    fn request(cookie_headers: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in cookie_headers {
            headers.append(COOKIE, value.parse().unwrap());
        }
        headers
    }

    /// What the jar (every cookie decrypted) reads: `read` must agree with it.
    fn through_jar(cookies: &Cookies, headers: &HeaderMap, name: &str) -> Option<String> {
        let jar: PrivateCookieJar = cookies.jar(headers);
        jar.get(name).map(|c| c.value().to_owned())
    }

    #[test]
    fn reads_only_an_authentic_cookie_of_that_name_as_the_jar_does() {
        let cookies = cookies();
        let other_key = {
            let secret = SecretString::from("cd".repeat(32));
            Cookies::new(&SessionKey::from_secret(&secret).unwrap(), false)
        };
        let session = sealed(&cookies, "sid", "session-1");
        let newer = sealed(&cookies, "sid", "session-2");
        let renamed = sealed(&cookies, "other", "session-1").replacen("other", "sid", 1);
        let foreign = sealed(&other_key, "sid", "forged");
        let (name, value) = session.split_once('=').unwrap();
        let mut flipped = value.as_bytes().to_vec();
        flipped[10] = if flipped[10] == b'A' { b'B' } else { b'A' };
        let tampered = format!("{name}={}", String::from_utf8(flipped).unwrap());
        let cases: Vec<(Vec<String>, Option<&str>)> = vec![
            (vec![session.clone()], Some("session-1")),
            (
                vec![format!("theme=dark; {session}; lang=en")],
                Some("session-1"),
            ),
            (vec!["theme=dark".into()], None),
            (vec![], None),
            (vec!["sid=plain-text".into()], None),
            (vec![tampered.clone()], None),
            // The cookie's name is authenticated: a value sealed for another name is refused.
            (vec![renamed], None),
            (vec![foreign.clone()], None),
            (vec![format!("{session}; {foreign}")], Some("session-1")),
            (vec![format!("{foreign}; {session}")], Some("session-1")),
            (vec![tampered, session.clone()], Some("session-1")),
            // Of two authentic cookies, the last.
            (vec![format!("{session}; {newer}")], Some("session-2")),
            (vec![newer, session], Some("session-1")),
        ];
        for (values, expected) in cases {
            let refs: Vec<&str> = values.iter().map(String::as_str).collect();
            let headers = request(&refs);
            assert_eq!(
                cookies.read(&headers, "sid").as_deref(),
                expected,
                "{values:?}"
            );
            assert_eq!(
                through_jar(&cookies, &headers, "sid").as_deref(),
                expected,
                "{values:?}"
            );
        }
    }
}
