//! Building and parsing HTTP `WWW-Authenticate` header values.
//!
//! Implements the challenge syntax of RFC 9110 §11.2 (`auth-scheme`, `token68`,
//! `auth-param`) as used by the `WWW-Authenticate` field of RFC 9110 §11.6.1,
//! including the list rules of §5.6.1 (OWS, empty list elements), tokens
//! (§5.6.2) and quoted strings with quoted-pair escapes (§5.6.4). The
//! convenience accessors cover OAuth bearer challenges (RFC 6750 §3) and the
//! `resource_metadata` parameter of RFC 9728 §5.1.

use std::fmt;

/// Errors from parsing or serialising a `WWW-Authenticate` value.
///
/// Positions are byte offsets into the header value being parsed (or, for
/// [`Challenge::to_header_value`], into the serialised value).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WwwAuthenticateError {
    /// The header value holds no challenge at all.
    #[error("empty WWW-Authenticate value")]
    Empty,
    /// A quoted string is never closed.
    #[error("unterminated quoted string starting at byte {position}")]
    UnterminatedQuotedString {
        /// Offset of the opening `"`.
        position: usize,
    },
    /// A token (scheme, parameter name or value) was expected but is missing.
    #[error("expected a token at byte {position}")]
    InvalidToken {
        /// Offset where the token should start.
        position: usize,
    },
    /// A character that the grammar does not allow here.
    #[error("unexpected character {found:?} at byte {position}")]
    UnexpectedCharacter {
        /// Offset of the character.
        position: usize,
        /// The offending character.
        found: char,
    },
    /// A parameter name occurs twice in one challenge (compared case-insensitively).
    #[error("duplicate auth-param {0:?}")]
    DuplicateParam(String),
    /// A control character (other than HTAB), e.g. CR or LF.
    #[error("control character at byte {position}")]
    ControlCharacter {
        /// Offset of the control character.
        position: usize,
    },
    /// [`Challenge::to_header_value`]: the challenge would not parse back unchanged
    /// (scheme or param name not a token, invalid token68, token68 mixed with params).
    #[error("challenge cannot be represented as a WWW-Authenticate value")]
    NotRepresentable,
}

type Error = WwwAuthenticateError;

/// One challenge: scheme (compared case-insensitively), optional token68, params in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The auth-scheme, e.g. `Bearer`.
    pub scheme: String,
    /// The token68 form of the challenge data, if used instead of params.
    pub token68: Option<String>,
    /// The auth-params as `(name, value)` in order, values unescaped.
    pub params: Vec<(String, String)>,
}

impl Challenge {
    /// A challenge with the `Bearer` scheme (RFC 6750 §3) and no params.
    pub fn bearer() -> Self {
        Self::new("Bearer")
    }

    /// A challenge with the given scheme and no params.
    pub fn new(scheme: impl Into<String>) -> Self {
        Self {
            scheme: scheme.into(),
            token68: None,
            params: Vec::new(),
        }
    }

    /// Appends an auth-param (builder style).
    #[must_use]
    pub fn with_param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.params.push((name.into(), value.into()));
        self
    }

    /// The value of the first param whose name matches case-insensitively.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether the scheme equals `scheme`, compared case-insensitively.
    pub fn is_scheme(&self, scheme: &str) -> bool {
        self.scheme.eq_ignore_ascii_case(scheme)
    }

    /// The `error` param (RFC 6750 §3.1).
    pub fn error(&self) -> Option<&str> {
        self.param("error")
    }

    /// The `scope` param (RFC 6750 §3).
    pub fn scope(&self) -> Option<&str> {
        self.param("scope")
    }

    /// The `resource_metadata` param (RFC 9728 §5.1).
    pub fn resource_metadata(&self) -> Option<&str> {
        self.param("resource_metadata")
    }

    /// Serialises the challenge for use as a header value. The result is checked
    /// to parse back to exactly this challenge, so CR/LF or other control
    /// characters ([`WwwAuthenticateError::ControlCharacter`], position in the
    /// output), duplicate param names and non-token names are rejected.
    pub fn to_header_value(&self) -> Result<String, WwwAuthenticateError> {
        let out = self.to_string();
        match parse(&out) {
            Ok(parsed) if matches!(parsed.as_slice(), [c] if c == self) => Ok(out),
            Err(e @ (Error::ControlCharacter { .. } | Error::DuplicateParam(_))) => Err(e),
            _ => Err(Error::NotRepresentable),
        }
    }
}

/// Serialises as `Scheme token68` or `Scheme name="value", …`; param values are
/// always quoted with `\` and `"` escaped. Control characters are emitted as-is:
/// use [`Challenge::to_header_value`] when producing a real header.
impl fmt::Display for Challenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.scheme)?;
        let mut sep = " ";
        if let Some(t) = &self.token68 {
            write!(f, " {t}")?;
            sep = ", ";
        }
        for (name, value) in &self.params {
            let value = value.replace('\\', r"\\").replace('"', r#"\""#);
            write!(f, "{sep}{name}=\"{value}\"")?;
            sep = ", ";
        }
        Ok(())
    }
}

/// Parses all challenges in one `WWW-Authenticate` header value.
pub fn parse(header_value: &str) -> Result<Vec<Challenge>, WwwAuthenticateError> {
    parse_all([header_value])
}

/// Parses the challenges of several `WWW-Authenticate` field lines, in order.
/// Empty lines are allowed (as for a comma-joined value), but at least one
/// challenge must be present overall. Error positions refer to the failing line.
pub fn parse_all<'a>(
    values: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<Challenge>, WwwAuthenticateError> {
    let mut out = Vec::new();
    for value in values {
        let mut cur = Cursor { s: value, pos: 0 };
        cur.skip_separators();
        while cur.peek().is_some() {
            out.push(cur.challenge()?);
            cur.skip_separators();
        }
    }
    (!out.is_empty()).then_some(out).ok_or(Error::Empty)
}

/// The first challenge with the `Bearer` scheme (case-insensitive).
pub fn find_bearer(challenges: &[Challenge]) -> Option<&Challenge> {
    challenges.iter().find(|c| c.is_scheme("Bearer"))
}

/// tchar per RFC 9110 §5.6.2.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// token68 body character per RFC 9110 §11.2 (without the trailing `=`).
fn is_token68_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~+/".contains(&b)
}

fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// CTLs other than HTAB (which is allowed in OWS and quoted strings).
fn is_ctl(c: char) -> bool {
    c.is_ascii_control() && c != '\t'
}

/// Byte cursor over one field line; `pos` always sits on a char boundary.
struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    /// First index at or after `from` whose byte does not satisfy `pred`.
    fn scan(&self, from: usize, pred: fn(u8) -> bool) -> usize {
        let bytes = self.s.as_bytes();
        let mut i = from;
        while bytes.get(i).is_some_and(|&b| pred(b)) {
            i += 1;
        }
        i
    }

    fn skip_ows(&mut self) -> usize {
        let start = self.pos;
        self.pos = self.scan(start, is_ows);
        self.pos - start
    }

    /// Skips OWS and commas (empty list elements); returns whether a comma was seen.
    fn skip_separators(&mut self) -> bool {
        let start = self.pos;
        self.pos = self.scan(start, |b| is_ows(b) || b == b',');
        self.s.as_bytes()[start..self.pos].contains(&b',')
    }

    /// Error at the current position; `missing_token` selects `InvalidToken`
    /// over `UnexpectedCharacter` (control characters always win).
    fn error(&self, missing_token: bool) -> Error {
        let position = self.pos;
        match self.s.get(position..).and_then(|r| r.chars().next()) {
            Some(c) if is_ctl(c) => Error::ControlCharacter { position },
            Some(found) if !missing_token => Error::UnexpectedCharacter { position, found },
            _ => Error::InvalidToken { position },
        }
    }

    fn token(&mut self) -> Result<String, Error> {
        let end = self.scan(self.pos, is_tchar);
        if end == self.pos {
            return Err(self.error(true));
        }
        let t = self.s[self.pos..end].to_owned();
        self.pos = end;
        Ok(t)
    }

    /// A token68 followed by OWS and then end or `,`; consumed only if so.
    fn try_token68(&mut self) -> Option<String> {
        let body_end = self.scan(self.pos, is_token68_char);
        let end = self.scan(body_end, |b| b == b'=');
        let next = self.scan(end, is_ows);
        if body_end == self.pos || !matches!(self.s.as_bytes().get(next), None | Some(b',')) {
            return None;
        }
        let t = self.s[self.pos..end].to_owned();
        self.pos = next;
        Some(t)
    }

    /// If `token BWS "="` starts here, the end of the token (nothing consumed).
    fn param_name_ahead(&self) -> Option<usize> {
        let end = self.scan(self.pos, is_tchar);
        let eq = self.scan(end, is_ows);
        (end > self.pos && self.s.as_bytes().get(eq) == Some(&b'=')).then_some(end)
    }

    /// quoted-string per RFC 9110 §5.6.4 (at its opening `"`), unescaping quoted-pairs.
    fn quoted_string(&mut self) -> Result<String, Error> {
        let open = self.pos;
        let mut out = String::new();
        let mut chars = self.s[open + 1..]
            .char_indices()
            .map(|(i, c)| (open + 1 + i, c));
        while let Some((i, c)) = chars.next() {
            let (i, c) = match c {
                '"' => {
                    self.pos = i + 1;
                    return Ok(out);
                }
                '\\' => match chars.next() {
                    Some(escaped) => escaped,
                    None => break,
                },
                _ => (i, c),
            };
            if is_ctl(c) {
                return Err(Error::ControlCharacter { position: i });
            }
            out.push(c);
        }
        Err(Error::UnterminatedQuotedString { position: open })
    }

    /// One challenge. Returns at the end of input, at a `,`, or (after commas)
    /// at the scheme of the next challenge.
    fn challenge(&mut self) -> Result<Challenge, Error> {
        let mut ch = Challenge::new(self.token()?);
        let ws = self.skip_ows();
        match self.peek() {
            None | Some(b',') => {}
            Some(_) if ws == 0 => return Err(self.error(false)),
            Some(_) => {
                if let Some(t) = self.try_token68() {
                    ch.token68 = Some(t);
                    return Ok(ch);
                }
            }
        }
        loop {
            let comma = self.skip_separators();
            if self.peek().is_none() {
                return Ok(ch);
            }
            let start = self.pos;
            let Some(name_end) = self.param_name_ahead() else {
                let token_end = self.scan(start, is_tchar);
                if comma && token_end > start {
                    return Ok(ch); // `token SP …` after a comma: the next challenge
                }
                if token_end > start {
                    self.pos = self.scan(token_end, is_ows);
                }
                return Err(self.error(token_end == start));
            };
            let name = self.s[start..name_end].to_owned();
            self.pos = name_end;
            self.skip_ows();
            self.pos += 1; // the `=` found by `param_name_ahead`
            self.skip_ows();
            let value = if self.peek() == Some(b'"') {
                self.quoted_string()?
            } else {
                self.token()?
            };
            if ch.param(&name).is_some() {
                return Err(Error::DuplicateParam(name));
            }
            ch.params.push((name, value));
            self.skip_ows();
            if !matches!(self.peek(), None | Some(b',')) {
                return Err(self.error(false));
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Parses, then re-serialises each challenge (token68 bare, values quoted), joined by ` | `.
    fn canon(s: &str) -> String {
        let v: Vec<_> = parse(s).unwrap().iter().map(Challenge::to_string).collect();
        v.join(" | ")
    }

    fn check(cases: &[(&str, &str)]) {
        for (input, expected) in cases {
            assert_eq!(canon(input), *expected, "{input:?}");
        }
    }

    fn one(s: &str) -> Challenge {
        let v = parse(s).unwrap();
        assert_eq!(v.len(), 1);
        v[0].clone()
    }

    fn ch(scheme: &str, params: &[(&str, &str)]) -> Challenge {
        let params = params.iter().map(|(n, v)| (n.to_string(), v.to_string()));
        Challenge {
            params: params.collect(),
            ..Challenge::new(scheme)
        }
    }

    fn t68(token68: &str) -> Challenge {
        Challenge {
            token68: Some(token68.into()),
            ..Challenge::new("Basic")
        }
    }

    #[test]
    fn comma_inside_quoted_string() {
        check(&[(r#"B r="a, b",x="c,d""#, r#"B r="a, b", x="c,d""#)]);
    }

    #[test]
    fn escaped_quotes_and_backslashes() {
        let c = one(r#"Bearer error_description="say \"hi\" \\ \x""#);
        assert_eq!(c.param("error_description"), Some(r#"say "hi" \ x"#));
    }

    #[test]
    fn bws_around_equals() {
        check(&[("Bearer a = \"x\" ,b\t=\tc", r#"Bearer a="x", b="c""#)]);
    }

    #[test]
    fn ows_and_empty_list_elements() {
        check(&[
            (" , ,B a=\"x\" , , b=y ,, , C ,", r#"B a="x", b="y" | C"#),
            ("Bearer , realm=x", r#"Bearer realm="x""#),
            ("Bearer,realm=x", r#"Bearer realm="x""#),
        ]);
    }

    #[test]
    fn token68() {
        assert_eq!(one("Basic dXNlcjpwYXNz=="), t68("dXNlcjpwYXNz=="));
        check(&[("Foo a-b.c_d~e+f/g", "Foo a-b.c_d~e+f/g")]);
    }

    #[test]
    fn token68_versus_param_versus_next_challenge() {
        check(&[
            ("Bearer abc=", "Bearer abc="),
            ("Bearer abc=def", r#"Bearer abc="def""#),
            (r#"Bearer t=, Basic r="x""#, r#"Bearer t= | Basic r="x""#),
            ("Bearer e=1, Basic r=x", r#"Bearer e="1" | Basic r="x""#),
            ("B e=1, Negotiate, C t==", r#"B e="1" | Negotiate | C t=="#),
        ]);
    }

    #[test]
    fn unquoted_token_values() {
        let c = one("Bearer error=invalid_token, scope=read");
        let expected = ch("Bearer", &[("error", "invalid_token"), ("scope", "read")]);
        assert_eq!(c, expected);
    }

    #[test]
    fn param_names_case_insensitive_and_duplicates_rejected() {
        let c = one("bearer Error=\"x\", SCOPE=y");
        assert!(c.is_scheme("BEARER") && c.error() == Some("x") && c.scope() == Some("y"));
        let dup = parse("Bearer a=1, A=\"2\"");
        assert_eq!(dup, Err(Error::DuplicateParam("A".into())));
        check(&[("Bearer a=1, Basic a=2", r#"Bearer a="1" | Basic a="2""#)]);
    }

    #[test]
    fn scheme_without_params() {
        assert_eq!(one("  Negotiate  "), Challenge::new("Negotiate"));
    }

    #[test]
    fn several_challenges_and_find_bearer() {
        let v = parse(r#"Basic realm="x", Bearer realm="y", error="invalid_token""#).unwrap();
        let bearer = ch("Bearer", &[("realm", "y"), ("error", "invalid_token")]);
        assert_eq!(v, [ch("Basic", &[("realm", "x")]), bearer.clone()]);
        assert_eq!(find_bearer(&v), Some(&bearer));
        let v = parse_all(["Basic realm=\"x\"", "", "bearer error=e"]).unwrap();
        assert_eq!(find_bearer(&v).and_then(Challenge::error), Some("e"));
        assert_eq!(find_bearer(&parse("Basic abc").unwrap()), None);
        assert_eq!(parse_all([]), Err(Error::Empty));
    }

    #[test]
    fn rejects_malformed_input() {
        let unterminated = |position| Error::UnterminatedQuotedString { position };
        let token = |position| Error::InvalidToken { position };
        let ctl = |position| Error::ControlCharacter { position };
        let unexpected = |position, found| Error::UnexpectedCharacter { position, found };
        let cases = [
            (r#"Bearer realm="x"#, unterminated(13)),
            (r#"Bearer realm="x\"#, unterminated(13)),
            ("=", token(0)),
            ("Bearer =", token(7)),
            ("Bearer a=b, realm=", token(18)),
            ("Bearer a=b, =c", token(12)),
            ("Bearer realm=\"a\r\nb\"", ctl(15)),
            ("Bearer realm=a\nX: y", ctl(14)),
            ("Bearer\0", ctl(6)),
            ("", Error::Empty),
            (" \t, ,", Error::Empty),
            ("Bearer a=b c=d", unexpected(11, 'c')),
            ("Bearer abc def", unexpected(11, 'd')),
            ("Bearer a=\"b\"c", unexpected(12, 'c')),
            ("Bearer\"x\"", unexpected(6, '"')),
        ];
        for (input, err) in cases {
            assert_eq!(parse(input), Err(err), "{input:?}");
        }
    }

    #[test]
    fn display_and_to_header_value() {
        let c = ch("Bearer", &[("a", "b c"), ("d", r#"q"\"#)]);
        let expected = r#"Bearer a="b c", d="q\"\\""#;
        assert_eq!(c.to_string(), expected);
        assert_eq!(c.to_header_value().unwrap(), expected);
        let crlf = ch("Bearer", &[("e", "a\r\nSet-Cookie: x")]).to_header_value();
        assert_eq!(crlf, Err(Error::ControlCharacter { position: 11 }));
        let dup = ch("Bearer", &[("a", "1"), ("A", "2")]).to_header_value();
        assert_eq!(dup, Err(Error::DuplicateParam("A".into())));
        let mixed = t68("ab").with_param("a", "b");
        let bad_name = ch("Bearer", &[("a b", "x")]);
        for bad in [ch("", &[]), ch("A B", &[]), bad_name, t68("a=b"), mixed] {
            let result = bad.to_header_value();
            assert_eq!(result, Err(Error::NotRepresentable), "{bad:?}");
        }
    }

    #[test]
    fn round_trip() {
        let tricky = r#"say "hi", \ or \\ é	"#;
        let cases = [
            Challenge::bearer(),
            t68("dXNlcjpwYXNz=="),
            ch("Bearer", &[("realm", ""), ("error", "invalid_token")]),
            ch("Bearer", &[("d", tricky), ("scope", "a b, c")]),
        ];
        for c in cases {
            let header = c.to_header_value().unwrap();
            assert_eq!(parse(&header).unwrap(), [c], "{header}");
        }
    }

    #[test]
    fn mcp_insufficient_scope_example() {
        let md = "http://127.0.0.1:5002/.well-known/oauth-protected-resource/mcp";
        let header = format!(
            r#"Bearer error="insufficient_scope", scope="mcp:connect mcp:tools:manage", resource_metadata="{md}", error_description="needs \"manage\"""#
        );
        let built = Challenge::bearer()
            .with_param("error", "insufficient_scope")
            .with_param("scope", "mcp:connect mcp:tools:manage")
            .with_param("resource_metadata", md)
            .with_param("error_description", r#"needs "manage""#);
        let v = parse(&header).unwrap();
        let c = find_bearer(&v).unwrap();
        assert_eq!(c.error(), Some("insufficient_scope"));
        assert_eq!(c.scope(), Some("mcp:connect mcp:tools:manage"));
        assert_eq!(c.resource_metadata(), Some(md));
        assert_eq!(c.param("error_description"), Some(r#"needs "manage""#));
        assert_eq!((c, built.to_header_value().unwrap()), (&built, header));
    }
}
