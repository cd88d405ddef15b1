//! Comparing secrets (client secrets, CSRF tokens, `state`, `nonce`, PKCE challenges, MAC tags,
//! session bindings) in time that does not depend on where they differ, so a caller who can
//! time the answer learns nothing about a secret's prefix. One helper over `subtle`, used
//! everywhere, rather than a hand-written fold in each crate.

use subtle::ConstantTimeEq;

/// Whether `a` and `b` hold the same bytes. The time taken depends only on the lengths: a length
/// mismatch answers `false` at once, so compare fixed-length values (digests, MACs, random
/// tokens of one size) when the length itself is secret.
pub fn is_equal(a: impl AsRef<[u8]>, b: impl AsRef<[u8]>) -> bool {
    bool::from(a.as_ref().ct_eq(b.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::is_equal;

    #[test]
    fn equal_bytes_are_equal() {
        assert!(is_equal("", ""));
        assert!(is_equal("csrf-token", "csrf-token"));
        assert!(is_equal([0_u8; 32], [0_u8; 32]));
    }

    #[test]
    fn any_difference_is_unequal() {
        assert!(!is_equal("csrf-token", "csrf-tokeN"));
        assert!(!is_equal("csrf-token", "Csrf-token"));
        assert!(!is_equal("csrf-token", "csrf-toke"));
        assert!(!is_equal("csrf-token", "csrf-token "));
        assert!(!is_equal("", "x"));
        assert!(!is_equal("x", ""));
    }
}
