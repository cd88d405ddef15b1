//! Signing people in to the web apps (ARCHITECTURE §5.1), shared by todo0's app and agent0:
//! the OpenID Connect relying party ([`rp`]), the key that encrypts their cookies
//! ([`SessionKey`]), the state a login carries from `/login` to the callback
//! ([`PendingLogin`]) and how the callback's parameters are checked ([`CallbackParams`]).

pub mod cookies;
pub mod rp;

use axum_extra::extract::cookie::Key;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use protocol::UnixTime;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha512};

pub use cookies::Cookies;
pub use rp::{Identity, LoginTokens, OidcSettings, OidcSetupError, RelyingParty, RpError};

/// How long a login may take between `/login` and the callback, in seconds.
pub const LOGIN_LIFETIME: i64 = 10 * 60;
/// The least secret material accepted for the cookie key when it is given as hex or base64, in
/// bytes: 256 random bits, what the sample's bootstrap generates
/// (`crypto.randomBytes(32).toString('hex')`).
pub const MIN_SECRET_BYTES: usize = 32;
/// The least accepted when it is plain text (a passphrase has far less entropy per byte).
pub const MIN_TEXT_SECRET_BYTES: usize = 64;
/// The secret material generated for a key file, in bytes.
const GENERATED_SECRET_BYTES: usize = 64;

/// Hex text (even length, hex digits only) as bytes: the sample writes `SESSION_SECRET` in hex.
fn hex_decode(text: &str) -> Option<Vec<u8>> {
    if text.is_empty()
        || !text.len().is_multiple_of(2)
        || !text.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

/// The key that encrypts and authenticates the cookies.
#[derive(Clone)]
pub struct SessionKey(Key);

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey(..)")
    }
}

/// Why a `SESSION_SECRET` was refused.
#[derive(Debug, thiserror::Error)]
#[error(
    "SESSION_SECRET is {got} bytes; it must be at least {MIN_SECRET_BYTES} bytes of hex or base64, \
     or {MIN_TEXT_SECRET_BYTES} characters of text. Generate one with `openssl rand -hex 32`, or \
     unset it to use a key generated in the data directory"
)]
pub struct SessionSecretError {
    got: usize,
}

impl SessionKey {
    /// A key from secret material: the decoded bytes when the value is hex or base64 (at least
    /// 32 bytes), else the text itself (at least 64 characters). All of it counts: the cookie key
    /// is its SHA-512.
    pub fn from_secret(secret: &SecretString) -> Result<Self, SessionSecretError> {
        let text = secret.expose_secret().trim();
        let decoded = hex_decode(text).or_else(|| {
            [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
                .iter()
                .find_map(|engine| engine.decode(text).ok())
        });
        let (material, minimum) = match decoded {
            Some(bytes) => (bytes, MIN_SECRET_BYTES),
            None => (text.as_bytes().to_vec(), MIN_TEXT_SECRET_BYTES),
        };
        if material.len() < minimum {
            return Err(SessionSecretError {
                got: material.len(),
            });
        }
        let digest = Sha512::digest(&material);
        Key::try_from(digest.as_slice())
            .map(Self)
            .map_err(|_| SessionSecretError { got: digest.len() })
    }

    /// Fresh secret material: base64 of 64 random bytes (for a key file).
    pub fn generate_secret() -> SecretString {
        let mut bytes = [0_u8; GENERATED_SECRET_BYTES];
        rand::rng().fill_bytes(&mut bytes);
        SecretString::from(STANDARD.encode(bytes))
    }

    /// The cookie jar key.
    pub fn key(&self) -> &Key {
        &self.0
    }
}

/// What the callback needs from `/login` (no `Debug`: it holds the PKCE verifier).
#[derive(Serialize, Deserialize)]
pub struct PendingLogin {
    /// OAuth `state`.
    pub state: String,
    /// OIDC `nonce`.
    pub nonce: String,
    /// The PKCE code verifier.
    pub verifier: String,
    /// When the login attempt lapses.
    pub exp: UnixTime,
    /// The IdP advertised RFC 9207 support when the login began, so the response must carry
    /// `iss`. (No serde default: a pending login from before this field is refused, not
    /// relaxed.)
    pub requires_iss: bool,
}

/// The authorization response (OIDC Core §3.1.2.5–6, RFC 9207).
#[derive(Debug, Deserialize)]
pub struct CallbackParams {
    code: Option<String>,
    state: Option<String>,
    iss: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

impl CallbackParams {
    /// The authorization code, once the response is checked against the pending login: no
    /// error, the same `state`, and (RFC 9207 §2.4) the expected issuer in `iss` — which must
    /// be present when the IdP advertises `authorization_response_iss_parameter_supported`,
    /// and is always refused when it names another issuer. The error text is for the person.
    pub fn code_for(self, pending: &PendingLogin, issuer: &str) -> Result<String, String> {
        if let Some(error) = self.error {
            let description = self.error_description.unwrap_or_default();
            return Err(format!(
                "the identity provider answered {error}: {description}"
            ));
        }
        let state_matches = self
            .state
            .as_deref()
            .is_some_and(|s| protocol::constant_time::is_equal(s, &pending.state));
        if !state_matches {
            return Err("the state does not match this browser's login; log in again".into());
        }
        match &self.iss {
            Some(iss) if iss != issuer => {
                return Err(format!("the response came from {iss}, not {issuer}"));
            }
            None if pending.requires_iss => {
                return Err(format!(
                    "the response does not say which identity provider sent it, although {issuer} \
                     always does; log in again"
                ));
            }
            _ => {}
        }
        self.code.ok_or_else(|| "the response has no code".into())
    }
}

/// 256 random bits, base64url.
pub fn random_token() -> String {
    let mut bytes = [0_u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn short_secrets_are_refused_with_the_fix() {
        let error = SessionKey::from_secret(&SecretString::from("hunter2")).unwrap_err();
        assert!(error.to_string().contains("at least 32 bytes"), "{error}");
        // Base64 counts decoded: 24 bytes are too few, however long the text.
        let short = STANDARD.encode([7_u8; 24]);
        assert!(SessionKey::from_secret(&SecretString::from(short)).is_err());
        let long = STANDARD.encode([7_u8; 32]);
        assert!(SessionKey::from_secret(&SecretString::from(long)).is_ok());
        // The sample's secret: 32 random bytes in hex (64 characters).
        let hex = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        assert!(SessionKey::from_secret(&SecretString::from(hex)).is_ok());
        // Hex counts decoded too: 62 hex characters are 31 bytes.
        assert!(SessionKey::from_secret(&SecretString::from(&hex[..62])).is_err());
        // Text that is neither counts as it is, and needs 64 characters.
        let text = format!("{}!", "x".repeat(62));
        assert!(SessionKey::from_secret(&SecretString::from(text)).is_err());
        let text = format!("{}!", "x".repeat(63));
        assert!(SessionKey::from_secret(&SecretString::from(text)).is_ok());
    }

    fn pending() -> PendingLogin {
        PendingLogin {
            state: "s1".into(),
            nonce: "n".into(),
            verifier: "v".into(),
            exp: 0,
            requires_iss: false,
        }
    }

    fn params(query: &str) -> CallbackParams {
        serde_json::from_value(
            url::form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .map(|(k, v)| (k, serde_json::Value::String(v)))
                .collect::<serde_json::Map<_, _>>()
                .into(),
        )
        .unwrap()
    }

    #[test]
    fn callbacks_must_match_the_pending_login() {
        let issuer = "http://idp";
        assert_eq!(
            params("code=c&state=s1&iss=http%3A%2F%2Fidp").code_for(&pending(), issuer),
            Ok("c".to_owned())
        );
        assert_eq!(
            params("code=c&state=s1").code_for(&pending(), issuer),
            Ok("c".to_owned())
        );
        for (query, expected) in [
            ("code=c&state=s2", "state does not match"),
            ("code=c", "state does not match"),
            (
                "code=c&state=s1&iss=http%3A%2F%2Fevil",
                "came from http://evil",
            ),
            ("state=s1", "no code"),
            ("error=access_denied&state=s1", "answered access_denied"),
        ] {
            let error = params(query).code_for(&pending(), issuer).unwrap_err();
            assert!(error.contains(expected), "{query}: {error}");
        }
    }

    #[test]
    fn a_missing_iss_is_refused_when_the_idp_advertises_rfc_9207() {
        let issuer = "http://idp";
        let advertised = PendingLogin {
            requires_iss: true,
            ..pending()
        };
        let error = params("code=c&state=s1")
            .code_for(&advertised, issuer)
            .unwrap_err();
        assert!(
            error.contains("does not say which identity provider"),
            "{error}"
        );
        assert_eq!(
            params("code=c&state=s1&iss=http%3A%2F%2Fidp").code_for(&advertised, issuer),
            Ok("c".to_owned())
        );
        let error = params("code=c&state=s1&iss=http%3A%2F%2Fevil")
            .code_for(&advertised, issuer)
            .unwrap_err();
        assert!(error.contains("came from http://evil"), "{error}");
        // Without the advertisement a missing iss is still accepted (checked above too).
        assert_eq!(
            params("code=c&state=s1").code_for(&pending(), issuer),
            Ok("c".to_owned())
        );
    }
}
