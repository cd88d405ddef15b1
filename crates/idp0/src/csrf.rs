//! Anti-CSRF checks for idp0's own state-changing forms (the login form, the logout
//! confirmation): a signed token, and what the browser says about where a post came from.
//!
//! The token is `issued_at "." base64url(HMAC-SHA256(key, purpose ‖ binding ‖ issued_at))`
//! (OWASP's "signed double-submit cookie"), where `binding` is a value the browser holds in an
//! HttpOnly cookie (the login form's random cookie; the SSO session for logout). The MAC proves
//! only that idp0 issued this token for this binding within [`MAX_AGE`]: nobody without the key
//! can forge one. It does not prove the post came from idp0's page. Cookies are not isolated by
//! port, so a page on another local port can fetch idp0's login form itself, get a genuine
//! cookie and token pair, plant the cookie in the browser and post the token — a login CSRF the
//! token cannot see. What stops that is [`is_foreign_post`]: the browser's `Origin` and
//! `Sec-Fetch-Site` headers (Fetch Metadata), which a page cannot set. Clients that send neither
//! (non-browser tools, old browsers) are let through; every current browser sends them.

use axum::http::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use protocol::UnixTime;
use secrecy::{ExposeSecret, SecretBox};
use sha2::Sha256;

/// Whether the browser says a form post did not come from one of idp0's own pages: an `Origin`
/// other than the issuer's (or `null`), or a `Sec-Fetch-Site` other than `same-origin` (or
/// `none`, a navigation the person started). Another port on the same host is `same-site`, not
/// `same-origin`, so it is refused too. Without either header nothing is known, and the post is
/// let through to the token check.
pub fn is_foreign_post(headers: &HeaderMap, issuer: &str) -> bool {
    crate::http::is_cross_origin(headers, issuer)
        || headers
            .get(SEC_FETCH_SITE)
            .is_some_and(|site| !matches!(site.as_bytes(), b"same-origin" | b"none"))
}

/// The Fetch Metadata request header (W3C Fetch Metadata Request Headers §2.4).
const SEC_FETCH_SITE: &str = "sec-fetch-site";

/// A token is accepted for this long after it was issued (the form's lifetime).
pub const MAX_AGE: i64 = 3600;

/// The MAC key. Kept in the data directory's keys ([`CSRF_KEY_FILE`]) beside the signing keys,
/// so every replica that shares those accepts a form another replica issued (a load balancer
/// sends the login form's GET and its POST to different replicas), and a restart keeps forms in
/// flight valid; random per process where there is no keys directory (tests).
pub struct CsrfKey(SecretBox<[u8; 32]>);

/// The key's file in the keys directory: 32 random bytes, base64url, mode 0600.
pub const CSRF_KEY_FILE: &str = "csrf.key";

impl CsrfKey {
    /// A fresh random key.
    pub fn random() -> Self {
        Self(SecretBox::new(Box::new(rand::random())))
    }

    /// The key in `keys_dir/`[`CSRF_KEY_FILE`], created there when missing.
    pub fn load_or_create(keys_dir: &std::path::Path) -> anyhow::Result<Self> {
        use anyhow::Context;
        let path = keys_dir.join(CSRF_KEY_FILE);
        if !path.exists() {
            std::fs::create_dir_all(keys_dir)?;
            let fresh: [u8; 32] = rand::random();
            crate::fsutil::write_private(&path, &URL_SAFE_NO_PAD.encode(fresh))
                .with_context(|| format!("writing {}", path.display()))?;
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let bytes: [u8; 32] = URL_SAFE_NO_PAD
            .decode(text.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .with_context(|| {
                format!(
                    "{} holds no 32-byte key; delete it to make a new one",
                    path.display()
                )
            })?;
        Ok(Self(SecretBox::new(Box::new(bytes))))
    }

    fn mac(&self, purpose: &str, binding: &str, issued_at: UnixTime) -> Option<Hmac<Sha256>> {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.0.expose_secret()).ok()?;
        mac.update(purpose.as_bytes());
        mac.update(&[0]);
        mac.update(binding.as_bytes());
        mac.update(&[0]);
        mac.update(issued_at.to_string().as_bytes());
        Some(mac)
    }

    /// The token for `purpose` bound to `binding`, issued at `now`.
    pub fn token(&self, purpose: &str, binding: &str, now: UnixTime) -> String {
        match self.mac(purpose, binding, now) {
            Some(mac) => format!(
                "{now}.{}",
                URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
            ),
            None => String::new(),
        }
    }

    /// Whether `token` was issued by this key for `purpose` and `binding`, and is not expired at
    /// `now`. The MAC is compared in constant time.
    pub fn is_valid(&self, purpose: &str, binding: &str, token: &str, now: UnixTime) -> bool {
        let Some((issued_at, tag)) = token.split_once('.') else {
            return false;
        };
        let (Ok(issued_at), Ok(tag)) = (issued_at.parse::<UnixTime>(), URL_SAFE_NO_PAD.decode(tag))
        else {
            return false;
        };
        let fresh = issued_at <= now.saturating_add(protocol::verify::DEFAULT_LEEWAY_SECONDS)
            && now.saturating_sub(issued_at) <= MAX_AGE;
        fresh
            && !binding.is_empty()
            && self
                .mac(purpose, binding, issued_at)
                .is_some_and(|mac| mac.verify_slice(&tag).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;
    use rstest::rstest;

    use super::*;

    const NOW: UnixTime = 1_800_000_000;

    #[rstest]
    #[case::genuine("login", "cookie", None, 0, true)]
    #[case::another_binding("login", "attacker-cookie", None, 0, false)]
    #[case::another_purpose("logout", "cookie", None, 0, false)]
    #[case::expired("login", "cookie", None, MAX_AGE + 1, false)]
    #[case::just_in_time("login", "cookie", None, MAX_AGE, true)]
    #[case::made_up_mac("login", "cookie", Some("1800000000.AAAA"), 0, false)]
    #[case::the_binding_as_token("login", "cookie", Some("cookie"), 0, false)]
    #[case::empty("login", "cookie", Some(""), 0, false)]
    #[case::from_the_future("login", "cookie", Some("future"), 0, false)]
    fn tokens_verify_only_for_their_key_purpose_binding_and_age(
        #[case] purpose: &str,
        #[case] binding: &str,
        #[case] token: Option<&str>,
        #[case] later: i64,
        #[case] valid: bool,
    ) {
        let key = CsrfKey::random();
        let token = match token {
            Some("future") => key.token("login", "cookie", NOW + 3600),
            Some(t) => t.to_owned(),
            None => key.token("login", "cookie", NOW),
        };
        assert_eq!(key.is_valid(purpose, binding, &token, NOW + later), valid);
        let other = CsrfKey::random();
        assert!(!other.is_valid(purpose, binding, &token, NOW + later));
    }

    #[test]
    fn a_key_in_a_keys_directory_is_the_same_for_every_process_that_loads_it() -> anyhow::Result<()>
    {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir()?;
        let first = CsrfKey::load_or_create(dir.path())?;
        let token = first.token("login", "cookie", NOW);
        let again = CsrfKey::load_or_create(dir.path())?;
        assert!(again.is_valid("login", "cookie", &token, NOW));
        let file = dir.path().join(CSRF_KEY_FILE);
        assert_eq!(
            std::fs::metadata(&file)?.permissions().mode() & 0o777,
            0o600
        );
        std::fs::write(&file, "short")?;
        let error = CsrfKey::load_or_create(dir.path())
            .err()
            .map(|e| e.to_string());
        assert!(error.is_some_and(|e| e.contains("delete it")));
        Ok(())
    }

    const ISSUER: &str = "http://127.0.0.1:9000/oauth2/default";

    #[rstest]
    #[case::no_headers(None, None, false)]
    #[case::same_origin(Some("http://127.0.0.1:9000"), Some("same-origin"), false)]
    #[case::user_initiated(None, Some("none"), false)]
    #[case::fetch_metadata_only(None, Some("same-origin"), false)]
    #[case::origin_only(Some("http://127.0.0.1:9000"), None, false)]
    #[case::another_port_same_site(None, Some("same-site"), true)]
    #[case::cross_site_without_origin(None, Some("cross-site"), true)]
    #[case::cross_site_with_our_origin(Some("http://127.0.0.1:9000"), Some("cross-site"), true)]
    #[case::unknown_value(None, Some("elsewhere"), true)]
    #[case::foreign_origin(Some("http://127.0.0.1:9001"), Some("same-origin"), true)]
    #[case::null_origin(Some("null"), None, true)]
    fn posts_are_foreign_when_the_browser_says_so(
        #[case] origin: Option<&'static str>,
        #[case] site: Option<&'static str>,
        #[case] foreign: bool,
    ) {
        let mut headers = HeaderMap::new();
        if let Some(origin) = origin {
            headers.insert("origin", HeaderValue::from_static(origin));
        }
        if let Some(site) = site {
            headers.insert(SEC_FETCH_SITE, HeaderValue::from_static(site));
        }
        assert_eq!(is_foreign_post(&headers, ISSUER), foreign);
    }
}
