//! GitHub's token formats and how github0 keeps them: a prefix naming the kind (`ghu_` user-to-server
//! access token, `ghr_` refresh token, `gho_` OAuth-app token), 30 random base62 characters and a
//! six-character base62 CRC32 checksum of them, as GitHub's secret scanning expects: 40
//! characters in all (refresh tokens carry 72 random characters: 80 in all). Only a token's
//! SHA-256 is stored. Authorization codes are 20 hex characters, as GitHub's are.

use sha2::{Digest, Sha256};

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The kind of a token, by its prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// `ghu_`: an expiring user-to-server access token.
    UserToServer,
    /// `gho_`: an OAuth app's access token that does not expire.
    OAuth,
    /// `ghr_`: a refresh token.
    Refresh,
}

impl TokenKind {
    /// The prefix, with its underscore.
    pub fn prefix(self) -> &'static str {
        match self {
            TokenKind::UserToServer => "ghu_",
            TokenKind::OAuth => "gho_",
            TokenKind::Refresh => "ghr_",
        }
    }

    fn random_len(self) -> usize {
        match self {
            TokenKind::UserToServer | TokenKind::OAuth => 30,
            TokenKind::Refresh => 72,
        }
    }
}

/// A new random token of `kind`.
pub fn new_token(kind: TokenKind) -> String {
    let random = random_base62(kind.random_len());
    let mut token = String::with_capacity(kind.prefix().len() + random.len() + 6);
    token.push_str(kind.prefix());
    token.push_str(&random);
    token.push_str(&checksum(&random));
    token
}

/// Whether `token` has a GitHub prefix and a valid checksum (a cheap check before any lookup).
pub fn well_formed(token: &str) -> bool {
    let Some(body) = ["ghu_", "gho_", "ghr_"]
        .iter()
        .find_map(|prefix| token.strip_prefix(prefix))
    else {
        return false;
    };
    if body.len() < 7 || !body.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return false;
    }
    let (random, sum) = body.split_at(body.len() - 6);
    checksum(random) == sum
}

/// A new authorization code: 20 lower-case hex characters.
pub fn new_code() -> String {
    let bytes: [u8; 10] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A random opaque value (sessions, pending authorizations, token families).
pub fn new_opaque() -> String {
    random_base62(43)
}

/// The stored form of a token, code or session id: SHA-256, lower-case hex.
pub fn digest(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The PKCE S256 transform of a verifier (RFC 7636 §4.2).
pub fn s256(verifier: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn random_base62(len: usize) -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from(BASE62[rng.random_range(0..BASE62.len())]))
        .collect()
}

/// CRC32 (IEEE) of `text`, in base62, left-padded with `0` to six characters.
fn checksum(text: &str) -> String {
    let mut crc: u32 = 0xFFFF_FFFF;
    for byte in text.bytes() {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    let mut value = u64::from(!crc);
    let mut digits = Vec::new();
    while value > 0 {
        digits.push(BASE62[usize::try_from(value % 62).unwrap_or(0)]);
        value /= 62;
    }
    while digits.len() < 6 {
        digits.push(b'0');
    }
    digits.iter().rev().map(|b| char::from(*b)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_have_githubs_shape_and_checksum() {
        for kind in [
            TokenKind::UserToServer,
            TokenKind::OAuth,
            TokenKind::Refresh,
        ] {
            let token = new_token(kind);
            assert!(token.starts_with(kind.prefix()));
            assert!(token.len() >= 40, "{}", token.len());
            assert!(well_formed(&token));
            let mut tampered = token.clone();
            tampered.replace_range(5..6, if &token[5..6] == "a" { "b" } else { "a" });
            assert!(!well_formed(&tampered));
        }
        assert_eq!(new_token(TokenKind::UserToServer).len(), 40);
        assert!(!well_formed("ghp_abc"));
        assert_eq!(new_code().len(), 20);
    }

    #[test]
    fn crc32_matches_the_standard_check_value() {
        // CRC32("123456789") = 0xCBF43926 = 3421780262; in base62 "3ji2kW" (6 digits).
        let mut value: u64 = 0xCBF4_3926;
        let mut digits = Vec::new();
        while value > 0 {
            digits.push(BASE62[usize::try_from(value % 62).unwrap_or(0)]);
            value /= 62;
        }
        let expected: String = digits.iter().rev().map(|b| char::from(*b)).collect();
        assert_eq!(checksum("123456789"), format!("{expected:0>6}"));
    }

    #[test]
    fn pkce_s256_matches_rfc_7636_appendix_b() {
        assert_eq!(
            s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }
}
