//! Reading dotenv files as the TypeScript sample's own loader (Node's `dotenv`) reads them, so
//! its files work unchanged: an unquoted value runs to the end of the line (spaces included, as in
//! `SCOPES=mcp:connect mcp:tools:read`), `'…'`, `"…"` and `` `…` `` quote (double quotes expand
//! `\n`, and may span lines: PEM keys), a `#` after whitespace starts a comment. `dotenvy` follows
//! shell rules instead and refuses the sample's unquoted lists, so this small reader is ours. It
//! reads what [`crate::write_env_files`] writes, too.

/// A line of an env file that cannot be read, and why (naming the variable where there is one).
#[derive(Debug)]
pub struct DotenvError {
    /// The 1-based line number.
    pub line: usize,
    /// What is wrong, naming the variable where there is one; never the value.
    pub problem: String,
}

/// Reads dotenv text into `(name, value)` pairs in order, as Node's `dotenv` does.
pub fn parse(text: &str) -> Result<Vec<(String, String)>, DotenvError> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut index = 0;
    while index < lines.len() {
        let number = index + 1;
        let line = lines[index].trim();
        index += 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
        let error = |problem: String| DotenvError {
            line: number,
            problem,
        };
        // The line itself is never echoed: a misplaced line is often a pasted secret or key.
        let Some((name, rest)) = line.split_once('=') else {
            return Err(error("expected NAME=value".into()));
        };
        let name = name.trim();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        {
            return Err(error(
                "the text before `=` is not a variable name (letters, digits, `_`, `.`, `-`)"
                    .into(),
            ));
        }
        let rest = rest.trim_start();
        let value = match rest.chars().next() {
            Some(quote @ ('"' | '\'' | '`')) => {
                // A quoted value may run over several lines (PEM keys).
                let mut body = rest[1..].to_owned();
                let close = loop {
                    if let Some(at) = closing_quote(&body, quote) {
                        break at;
                    }
                    let Some(next) = lines.get(index) else {
                        return Err(error(format!("{name}: the {quote} quote is never closed")));
                    };
                    body.push('\n');
                    body.push_str(next);
                    index += 1;
                };
                let after = body[close + 1..].trim();
                if !after.is_empty() && !after.starts_with('#') {
                    return Err(error(format!(
                        "{name}: unexpected text after the closing {quote} quote"
                    )));
                }
                let inner = &body[..close];
                if quote == '"' {
                    unescape_double_quoted(inner)
                } else {
                    inner.to_owned()
                }
            }
            // Unquoted: to the end of the line, less a comment that follows whitespace.
            _ => {
                let end = rest
                    .char_indices()
                    .find(|&(i, c)| {
                        c == '#' && (i == 0 || rest[..i].ends_with(char::is_whitespace))
                    })
                    .map_or(rest.len(), |(i, _)| i);
                rest[..end].trim().to_owned()
            }
        };
        out.push((name.to_owned(), value));
    }
    Ok(out)
}

/// Where `quote` closes `body` (a quote not escaped by a backslash).
fn closing_quote(body: &str, quote: char) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in body.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            c if c == quote && !escaped => return Some(i),
            _ => escaped = false,
        }
    }
    None
}

fn unescape_double_quoted(inner: &str) -> String {
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('"') => out.push('"'),
            Some('\\') => out.push('\\'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Vec<(String, String)> {
        parse(text).unwrap()
    }

    #[test]
    fn reads_the_samples_unquoted_lists_and_node_dotenv_forms() {
        let text = "# agent0\n\
            AI_AGENT_TODO_MCP_SERVER_SCOPES_TO_REQUEST=mcp:connect mcp:tools:read mcp:tools:manage\n\
            export OKTA_DOMAIN=dev-123.okta.com\n\
            EMPTY=\n\
            SPACED = value with spaces   # a comment\n\
            HASH=abc#def\n\
            SINGLE='single $x # not a comment'\n\
            DOUBLE=\"line\\nbreak \\\"q\\\"\" # c\n\
            TICK=`x`\n\
            KEY=\"-----BEGIN MULTI-LINE VALUE-----\nabc\n-----END MULTI-LINE VALUE-----\"\n\
            URL=http://localhost:3000/callback\n";
        let vars = parsed(text);
        let get = |n: &str| vars.iter().find(|(k, _)| k == n).unwrap().1.clone();
        assert_eq!(
            get("AI_AGENT_TODO_MCP_SERVER_SCOPES_TO_REQUEST"),
            "mcp:connect mcp:tools:read mcp:tools:manage"
        );
        assert_eq!(get("OKTA_DOMAIN"), "dev-123.okta.com");
        assert_eq!(get("EMPTY"), "");
        assert_eq!(get("SPACED"), "value with spaces");
        assert_eq!(get("HASH"), "abc#def");
        assert_eq!(get("SINGLE"), "single $x # not a comment");
        assert_eq!(get("DOUBLE"), "line\nbreak \"q\"");
        assert_eq!(get("TICK"), "x");
        assert_eq!(
            get("KEY"),
            "-----BEGIN MULTI-LINE VALUE-----\nabc\n-----END MULTI-LINE VALUE-----"
        );
        assert_eq!(get("URL"), "http://localhost:3000/callback");
    }

    #[test]
    fn reads_what_devstack_writes() {
        let text = "# agent0 settings\nA=\"with space\"\nB=plain\n";
        assert_eq!(
            parsed(text),
            [
                ("A".into(), "with space".into()),
                ("B".into(), "plain".into())
            ]
        );
    }

    #[test]
    fn errors_name_the_line_and_the_variable() {
        let e = parse("A=1\nOKTA_CLIENT_SECRET=\"abc\nB=2\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.problem.contains("OKTA_CLIENT_SECRET"), "{}", e.problem);
        let e = parse("A=1\n\njust words\n").unwrap_err();
        assert_eq!(e.line, 3);
        let e = parse("BAD NAME=1\n").unwrap_err();
        assert!(e.problem.contains("not a variable name"), "{}", e.problem);
        // The offending text is never echoed: it may be a pasted secret.
        let e = parse("-----BEGIN MULTI-LINE VALUE-----\n").unwrap_err();
        assert!(!e.problem.contains("MULTI-LINE"), "{}", e.problem);
        let e = parse("X=\"a\" b\n").unwrap_err();
        assert!(e.problem.starts_with("X:"), "{}", e.problem);
    }
}
