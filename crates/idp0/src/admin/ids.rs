//! Okta-looking identifiers and timestamps: a three-character type prefix (`aus` authorization
//! server, `scp` scope, `00p` policy, `0pr` rule, `0oa` app, `wlp` AI agent, `tos` trusted
//! origin, `mcn` connection, `pks` agent key, `aop` operation, `oae` error) and 17 random
//! letters and digits, 20 characters as Okta's are; ISO 8601 UTC times with milliseconds.

use rand::Rng;
use sha2::{Digest, Sha256};

const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// `count` random letters and digits.
pub(crate) fn random_alnum(count: usize) -> String {
    let mut rng = rand::rng();
    (0..count)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

/// A new id with `prefix`.
pub(crate) fn new_id(prefix: &str) -> String {
    format!("{prefix}{}", random_alnum(17))
}

/// The org id: `00o` and 17 characters derived from the issuer, stable across restarts.
pub(crate) fn org_id(issuer: &str) -> String {
    let digest = Sha256::digest(issuer.as_bytes());
    let tail: String = digest
        .iter()
        .take(17)
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect();
    format!("00o{tail}")
}

/// Whether `id` may be an id in a path: letters, digits, `-` and `_`, 1 to 64 characters.
pub(crate) fn is_valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Unix seconds as Okta writes times: `2026-12-05T03:28:31.000Z`.
pub(crate) fn okta_time(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.000Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_look_like_okta_ids() {
        let id = new_id("aus");
        assert_eq!(id.len(), 20);
        assert!(id.starts_with("aus") && is_valid_id(&id));
        assert_ne!(new_id("aus"), id);
        assert_eq!(org_id("http://x"), org_id("http://x"));
        assert_ne!(org_id("http://x"), org_id("http://y"));
        assert!(!is_valid_id("../etc") && !is_valid_id(""));
    }

    #[test]
    fn times_are_iso_8601_utc() {
        assert_eq!(okta_time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(okta_time(1_796_441_311), "2026-12-05T03:28:31.000Z");
        assert_eq!(okta_time(951_782_400), "2000-02-29T00:00:00.000Z");
    }
}
