//! Reading a bearer token from an `Authorization` request header (RFC 6750 §2.1):
//!
//! ```text
//! b64token    = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
//! credentials = "Bearer" 1*SP b64token
//! ```
//!
//! The scheme is case-insensitive (RFC 9110 §11.1); exactly one non-empty token follows it.
//! Anything else (another scheme, no token, two tokens, a character outside `b64token`) is not a
//! bearer credential. Every service reads the header through [`parse_authorization`], so they
//! all accept and refuse the same values.

/// The token in an `Authorization` header value, or `None` when the value is not `Bearer`
/// followed by exactly one `b64token`. Leading and trailing whitespace around the whole value is
/// ignored (RFC 9110 §5.5: it is not part of a field value).
pub fn parse_authorization(value: &str) -> Option<&str> {
    let value = value.trim_matches([' ', '\t']);
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim_start_matches(' ');
    is_b64token(token).then_some(token)
}

/// RFC 6750 §2.1's `b64token`: at least one token character, then only `=` padding.
fn is_b64token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    // Checked 64 bytes at a time without stopping at the first bad byte, which the compiler
    // turns into vector comparisons: every request's token (≈ 1 KB) passes through here.
    !body.is_empty()
        && body
            .as_bytes()
            .chunks(64)
            .all(|chunk| chunk.iter().fold(true, |ok, &b| ok & is_token_char(b)))
}

fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() | matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::parse_authorization;

    #[rstest]
    #[case::jwt(
        "Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln",
        "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln"
    )]
    #[case::lower_case_scheme("bearer abc", "abc")]
    #[case::upper_case_scheme("BEARER abc", "abc")]
    #[case::mixed_case_scheme("bEaReR abc", "abc")]
    #[case::every_token_character("Bearer aZ09-._~+/", "aZ09-._~+/")]
    #[case::padding("Bearer abc==", "abc==")]
    #[case::several_spaces("Bearer   abc", "abc")]
    #[case::surrounding_whitespace(" Bearer abc \t", "abc")]
    fn bearer_credentials_yield_their_token(#[case] header: &str, #[case] token: &str) {
        assert_eq!(parse_authorization(header), Some(token));
    }

    #[rstest]
    #[case::empty("")]
    #[case::scheme_only("Bearer")]
    #[case::scheme_and_space("Bearer ")]
    #[case::scheme_and_spaces("Bearer    ")]
    #[case::no_space("Bearerabc")]
    #[case::tab_separator("Bearer\tabc")]
    #[case::other_scheme("Basic YWxpY2U6c2VjcmV0")]
    #[case::scheme_prefix("Bearers abc")]
    #[case::two_tokens("Bearer abc def")]
    #[case::token_with_tab("Bearer abc\tdef")]
    #[case::padding_only("Bearer ==")]
    #[case::padding_in_the_middle("Bearer ab=c")]
    #[case::comma("Bearer abc,def")]
    #[case::quoted("Bearer \"abc\"")]
    #[case::auth_params("Bearer realm=\"x\"")]
    #[case::non_ascii("Bearer abcé")]
    fn anything_else_is_not_a_bearer_credential(#[case] header: &str) {
        assert_eq!(parse_authorization(header), None);
    }
}
