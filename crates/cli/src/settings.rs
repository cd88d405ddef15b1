//! Settings by the sample's variable names (ARCHITECTURE §4): a command-line flag wins, then the
//! process environment, then `--env-file`s in order (later files win), then the dotenv files idp0
//! wrote in the data directory.
//!
//! The files are read as the TypeScript sample's own loader (Node's `dotenv`) reads them, so its
//! files work unchanged: an unquoted value runs to the end of the line (spaces included, as in
//! `SCOPES=mcp:connect mcp:tools:read`), `'…'`, `"…"` and `` `…` `` quote (double quotes expand
//! `\n`), and a relative path in a file means a path beside that file. `dotenvy` follows shell
//! rules instead and refuses the sample's unquoted lists, so this small reader is ours.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Context;

/// A value and the file it came from (`None`: the process environment or a flag).
struct Value {
    text: String,
    file: Option<PathBuf>,
}

/// Variables read from the environment and dotenv files.
pub(crate) struct Settings(HashMap<String, Value>);

impl Settings {
    /// Loads `env_files`, falling back to `<data_dir>/<default_file>` when none is given.
    pub(crate) fn load(
        env_files: &[PathBuf],
        data_dir: &Path,
        default_file: &str,
    ) -> anyhow::Result<Self> {
        let mut vars = HashMap::new();
        let default = data_dir.join(default_file);
        let files: Vec<PathBuf> = if env_files.is_empty() {
            default.exists().then_some(default).into_iter().collect()
        } else {
            env_files.to_vec()
        };
        for file in files {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading the env file {}", file.display()))?;
            let entries = parse_dotenv(&text)
                .map_err(|e| anyhow::anyhow!("{}:{}: {}", file.display(), e.line, e.problem))?;
            for (key, text) in entries {
                let file = Some(file.clone());
                vars.insert(key, Value { text, file });
            }
        }
        Ok(Self(vars))
    }

    /// A value: `flag`, else the process environment, else the files.
    pub(crate) fn get(&self, flag: Option<&str>, name: &str) -> Option<String> {
        flag.map(str::to_owned)
            .or_else(|| std::env::var(name).ok().filter(|v| !v.is_empty()))
            .or_else(|| {
                self.0
                    .get(name)
                    .map(|v| v.text.clone())
                    .filter(|v| !v.is_empty())
            })
    }

    /// A file path: as given in a flag or the environment (relative to the working directory),
    /// or, from an env file, relative to that file's folder (the sample writes
    /// `AI_AGENT_PRIVATE_KEY_FILE` relative to the folder of its `.env.agent`).
    pub(crate) fn path(&self, flag: Option<&Path>, name: &str) -> Option<PathBuf> {
        if let Some(flag) = flag {
            return Some(flag.to_owned());
        }
        if let Some(value) = std::env::var_os(name).filter(|v| !v.is_empty()) {
            return Some(PathBuf::from(value));
        }
        let value = self.0.get(name).filter(|v| !v.text.is_empty())?;
        let path = PathBuf::from(&value.text);
        Some(match value.file.as_deref().and_then(Path::parent) {
            Some(folder) if path.is_relative() => folder.join(path),
            _ => path,
        })
    }

    /// The first of `names` that is set (after `flag`): a setting the sample spells several ways.
    pub(crate) fn get_any(&self, flag: Option<&str>, names: &[&str]) -> Option<String> {
        flag.map(str::to_owned)
            .or_else(|| names.iter().find_map(|name| self.get(None, name)))
    }

    /// [`Self::get_any`], required, with an error that names the flag and every variable.
    pub(crate) fn require_any(
        &self,
        flag: Option<&str>,
        flag_name: &str,
        names: &[&str],
    ) -> anyhow::Result<String> {
        self.get_any(flag, names).with_context(|| {
            format!(
                "missing {flag_name} (or {} in the environment or an --env-file)",
                names.join(" or ")
            )
        })
    }

    /// A required value, with an error that names the flag and the variable.
    pub(crate) fn require(
        &self,
        flag: Option<&str>,
        flag_name: &str,
        name: &str,
    ) -> anyhow::Result<String> {
        self.get(flag, name).with_context(|| {
            format!("missing {flag_name} (or {name} in the environment or an --env-file)")
        })
    }
}

/// A line of an env file that cannot be read, and why (naming the variable where there is one).
#[derive(Debug)]
pub(crate) struct DotenvError {
    pub(crate) line: usize,
    pub(crate) problem: String,
}

/// Reads dotenv text into `(name, value)` pairs in order, as Node's `dotenv` does.
pub(crate) fn parse_dotenv(text: &str) -> Result<Vec<(String, String)>, DotenvError> {
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
        let Some((name, rest)) = line.split_once('=') else {
            return Err(error(format!(
                "expected NAME=value, found {:?}",
                line.chars().take(40).collect::<String>()
            )));
        };
        let name = name.trim();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        {
            return Err(error(format!("{name:?} is not a variable name")));
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
        parse_dotenv(text).unwrap()
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
            KEY=\"-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----\"\n\
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
            "-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----"
        );
        assert_eq!(get("URL"), "http://localhost:3000/callback");
    }

    #[test]
    fn reads_what_devconfig_writes() {
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
        let e = parse_dotenv("A=1\nOKTA_CLIENT_SECRET=\"abc\nB=2\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.problem.contains("OKTA_CLIENT_SECRET"), "{}", e.problem);
        let e = parse_dotenv("A=1\n\njust words\n").unwrap_err();
        assert_eq!(e.line, 3);
        let e = parse_dotenv("BAD NAME=1\n").unwrap_err();
        assert!(e.problem.contains("BAD NAME"), "{}", e.problem);
        let e = parse_dotenv("X=\"a\" b\n").unwrap_err();
        assert!(e.problem.starts_with("X:"), "{}", e.problem);
    }

    #[test]
    fn a_relative_path_in_a_file_is_beside_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("packages/agent0");
        std::fs::create_dir_all(&folder).unwrap();
        let file = folder.join(".env.agent");
        std::fs::write(
            &file,
            "AI_AGENT_PRIVATE_KEY_FILE=./agent.pem\nABSOLUTE_KEY_FILE=/etc/key.pem\n",
        )
        .unwrap();
        let settings = Settings::load(std::slice::from_ref(&file), dir.path(), "x.env").unwrap();
        assert_eq!(
            settings.path(None, "AI_AGENT_PRIVATE_KEY_FILE").unwrap(),
            folder.join("./agent.pem")
        );
        assert_eq!(
            settings.path(None, "ABSOLUTE_KEY_FILE").unwrap(),
            PathBuf::from("/etc/key.pem")
        );
        assert_eq!(
            settings
                .path(Some(Path::new("flag.pem")), "AI_AGENT_PRIVATE_KEY_FILE")
                .unwrap(),
            PathBuf::from("flag.pem")
        );
    }

    #[test]
    fn a_bad_file_is_named_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(".env.app");
        std::fs::write(&file, "PORT=3000\nSESSION_SECRET='abc\n").unwrap();
        let error = Settings::load(std::slice::from_ref(&file), dir.path(), "x.env")
            .err()
            .unwrap()
            .to_string();
        assert!(
            error.contains(&format!("{}:2: SESSION_SECRET", file.display())),
            "{error}"
        );
    }
}
