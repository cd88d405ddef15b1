//! Anti-CSRF tokens for idp0's own forms (the login form, the logout confirmation), bound to a
//! server-side key: a token is `issued_at "." base64url(HMAC-SHA256(key, purpose ‖ binding ‖
//! issued_at))` (OWASP's "signed double-submit cookie"). `binding` is a value the browser holds in
//! an HttpOnly cookie (the login form's random cookie; the SSO session for logout), so a page that
//! can set cookies for idp0's host (another local port) cannot make up a cookie and field that
//! match: without the key it cannot compute the MAC. Tokens expire after [`MAX_AGE`].

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use protocol::UnixTime;
use secrecy::{ExposeSecret, SecretBox};
use sha2::Sha256;

/// A token is accepted for this long after it was issued (the form's lifetime).
pub const MAX_AGE: i64 = 3600;

/// The per-process MAC key (forms in flight during a restart ask the person to try again).
pub struct CsrfKey(SecretBox<[u8; 32]>);

impl CsrfKey {
    /// A fresh random key.
    pub fn random() -> Self {
        Self(SecretBox::new(Box::new(rand::random())))
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
}
