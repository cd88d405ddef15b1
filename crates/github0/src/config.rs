//! github0's configuration: the runtime [`Config`] other crates build directly (as `up` does),
//! and the TOML [`ConfigFile`] the `secure-agent github0` command reads, parsed into it at load
//! time (unknown keys are errors). People can also come from a `login:password` file, the format
//! of the stack's `demo-users.txt`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

use crate::tokens::digest;

/// Default lifetime of a user-to-server access token (GitHub: eight hours).
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(8 * 3600);
/// Default lifetime of a refresh token (GitHub: six months, 15,811,200 seconds).
pub const DEFAULT_REFRESH_TOKEN_LIFETIME: Duration = Duration::from_secs(15_811_200);
/// Default REST budget per access token and hour (GitHub: 5,000 for a user).
pub const DEFAULT_RATE_LIMIT: u32 = 5000;

/// How github0 runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where people and clients reach github0, no trailing slash needed
    /// (`http://localhost:5003`). The web pages and OAuth endpoints are at its root, the REST API
    /// under `/api/v3` (as on GitHub Enterprise Server) and the MCP endpoint at `/mcp`; every URL
    /// in a response is built from it.
    pub public_url: Url,
    /// The SQLite database file (created if missing).
    pub database: PathBuf,
    /// The registered OAuth apps.
    pub apps: Vec<App>,
    /// The people who can sign in (created or updated at start; their passwords hashed).
    pub users: Vec<User>,
    /// Lifetime of `ghu_` access tokens.
    pub token_lifetime: Duration,
    /// Lifetime of `ghr_` refresh tokens.
    pub refresh_token_lifetime: Duration,
    /// REST requests allowed per access token and hour.
    pub rate_limit_per_hour: u32,
}

impl Config {
    /// Defaults for everything but the URL, the database, the apps and the people.
    pub fn new(public_url: Url, database: PathBuf) -> Self {
        Self {
            public_url,
            database,
            apps: Vec::new(),
            users: Vec::new(),
            token_lifetime: DEFAULT_TOKEN_LIFETIME,
            refresh_token_lifetime: DEFAULT_REFRESH_TOKEN_LIFETIME,
            rate_limit_per_hour: DEFAULT_RATE_LIMIT,
        }
    }

    /// The web base URL without a trailing slash.
    pub fn web_base(&self) -> String {
        self.public_url.as_str().trim_end_matches('/').to_owned()
    }

    /// The REST API's base URL (`<public_url>/api/v3`).
    pub fn api_base(&self) -> String {
        format!("{}/api/v3", self.web_base())
    }

    /// The MCP endpoint (`<public_url>/mcp`).
    pub fn mcp_url(&self) -> String {
        format!("{}/mcp", self.web_base())
    }
}

/// A registered OAuth app. Only the SHA-256 of its client secret is kept.
#[derive(Debug, Clone)]
pub struct App {
    /// The client id.
    pub client_id: String,
    /// The name shown on the consent page ("Authorize <name>").
    pub name: String,
    /// SHA-256 (hex) of the client secret.
    pub client_secret_sha256: String,
    /// Registered callback URLs: a `redirect_uri` must be one of them or below one (same scheme,
    /// host and port, a path under it), as GitHub's rule for OAuth apps.
    pub callback_urls: Vec<Url>,
    /// Expiring `ghu_` tokens with `ghr_` refresh tokens (GitHub App style, the default), or
    /// non-expiring `gho_` tokens (a classic OAuth app).
    pub expiring_tokens: bool,
}

impl App {
    /// An app with expiring tokens.
    pub fn new(
        client_id: impl Into<String>,
        name: impl Into<String>,
        client_secret: &SecretString,
        callback_urls: Vec<Url>,
    ) -> Self {
        Self {
            client_id: client_id.into(),
            name: name.into(),
            client_secret_sha256: digest(client_secret.expose_secret()),
            callback_urls,
            expiring_tokens: true,
        }
    }
}

/// A person who can sign in.
#[derive(Debug, Clone)]
pub struct User {
    /// Their login (also their username at sign-in).
    pub login: String,
    /// Their display name.
    pub name: String,
    /// Their password (hashed with Argon2id before it is stored).
    pub password: SecretString,
}

impl User {
    /// A person whose display name is their login, capitalised.
    pub fn new(login: impl Into<String>, password: SecretString) -> Self {
        let login = login.into();
        let mut chars = login.chars();
        let name = chars
            .next()
            .map(|first| first.to_uppercase().chain(chars).collect())
            .unwrap_or_default();
        Self {
            login,
            name,
            password,
        }
    }
}

/// Reads `login:password` lines (the stack's `demo-users.txt`); blank lines and `#` comments
/// are skipped.
pub fn read_users_file(path: &Path) -> Result<Vec<User>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    let mut users = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((login, password)) = line.split_once(':') else {
            return Err(ConfigError::Invalid {
                key: format!("{}:{}", path.display(), index + 1),
                problem: "expected `login:password`".into(),
            });
        };
        check_login(login, &format!("{}:{}", path.display(), index + 1))?;
        users.push(User::new(login, SecretString::from(password.to_owned())));
    }
    Ok(users)
}

/// Why a configuration was refused: names the key and the fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file could not be read.
    #[error("cannot read {path}: {message}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// The TOML does not parse (unknown keys included).
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, naming the key.
        message: String,
    },
    /// A value is wrong.
    #[error("{key}: {problem}")]
    Invalid {
        /// The key.
        key: String,
        /// What is wrong and what to do.
        problem: String,
    },
}

/// The TOML file (`secure-agent github0 --config FILE`). Every key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// See [`Config::public_url`].
    pub public_url: Option<Url>,
    /// See [`Config::token_lifetime`], in seconds.
    pub token_lifetime_seconds: Option<u64>,
    /// See [`Config::refresh_token_lifetime`], in seconds.
    pub refresh_token_lifetime_seconds: Option<u64>,
    /// See [`Config::rate_limit_per_hour`].
    pub rate_limit_per_hour: Option<u32>,
    /// A `login:password` file (relative paths from the config file's directory).
    pub users_file: Option<PathBuf>,
    /// People.
    #[serde(default)]
    pub users: Vec<UserEntry>,
    /// OAuth apps.
    #[serde(default)]
    pub apps: Vec<AppEntry>,
}

/// `[[users]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserEntry {
    /// Login and username.
    pub login: String,
    /// Display name; default: the login, capitalised.
    pub name: Option<String>,
    /// Password.
    pub password: SecretString,
}

/// `[[apps]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppEntry {
    /// Client id.
    pub client_id: String,
    /// Name on the consent page.
    pub name: String,
    /// The client secret; or give `client_secret_sha256` so the file holds no secret.
    pub client_secret: Option<SecretString>,
    /// SHA-256 (hex) of the client secret.
    pub client_secret_sha256: Option<String>,
    /// Registered callback URLs (at least one).
    pub callback_urls: Vec<Url>,
    /// See [`App::expiring_tokens`]; default true.
    #[serde(default = "yes")]
    pub expiring_tokens: bool,
}

fn yes() -> bool {
    true
}

impl ConfigFile {
    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })
    }

    /// Applies this file to `config`; `base` resolves a relative `users_file`.
    pub fn apply(self, config: &mut Config, base: &Path) -> Result<(), ConfigError> {
        if let Some(url) = self.public_url {
            config.public_url = url;
        }
        if let Some(seconds) = self.token_lifetime_seconds {
            config.token_lifetime = positive(seconds, "token_lifetime_seconds")?;
        }
        if let Some(seconds) = self.refresh_token_lifetime_seconds {
            config.refresh_token_lifetime = positive(seconds, "refresh_token_lifetime_seconds")?;
        }
        if let Some(limit) = self.rate_limit_per_hour {
            if limit == 0 {
                return Err(ConfigError::Invalid {
                    key: "rate_limit_per_hour".into(),
                    problem: "must be at least 1".into(),
                });
            }
            config.rate_limit_per_hour = limit;
        }
        if let Some(file) = self.users_file {
            config.users.extend(read_users_file(&base.join(file))?);
        }
        for (i, entry) in self.users.into_iter().enumerate() {
            check_login(&entry.login, &format!("users[{i}].login"))?;
            let mut user = User::new(entry.login, entry.password);
            if let Some(name) = entry.name {
                user.name = name;
            }
            config.users.push(user);
        }
        for (i, entry) in self.apps.into_iter().enumerate() {
            let key = |k: &str| format!("apps[{i}].{k}");
            let client_secret_sha256 = match (entry.client_secret, entry.client_secret_sha256) {
                (Some(secret), None) => digest(secret.expose_secret()),
                (None, Some(hash))
                    if hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()) =>
                {
                    hash.to_ascii_lowercase()
                }
                (None, Some(_)) => {
                    return Err(ConfigError::Invalid {
                        key: key("client_secret_sha256"),
                        problem: "must be 64 hex digits (the SHA-256 of the secret)".into(),
                    });
                }
                _ => {
                    return Err(ConfigError::Invalid {
                        key: key("client_secret"),
                        problem: "give exactly one of client_secret and client_secret_sha256"
                            .into(),
                    });
                }
            };
            if entry.callback_urls.is_empty() {
                return Err(ConfigError::Invalid {
                    key: key("callback_urls"),
                    problem: "register at least one callback URL".into(),
                });
            }
            config.apps.push(App {
                client_id: entry.client_id,
                name: entry.name,
                client_secret_sha256,
                callback_urls: entry.callback_urls,
                expiring_tokens: entry.expiring_tokens,
            });
        }
        validate(config)
    }
}

/// Checks what no file or flag may leave wrong: unique logins and client ids.
pub fn validate(config: &Config) -> Result<(), ConfigError> {
    let mut logins = std::collections::HashSet::new();
    for user in &config.users {
        if !logins.insert(user.login.to_ascii_lowercase()) {
            return Err(ConfigError::Invalid {
                key: format!("users: {}", user.login),
                problem: "the same login is given twice".into(),
            });
        }
    }
    let mut ids = std::collections::HashSet::new();
    for app in &config.apps {
        if !ids.insert(app.client_id.as_str()) {
            return Err(ConfigError::Invalid {
                key: format!("apps: {}", app.client_id),
                problem: "the same client_id is given twice".into(),
            });
        }
        if app.client_id.is_empty() || app.callback_urls.is_empty() {
            return Err(ConfigError::Invalid {
                key: format!("apps: {:?}", app.client_id),
                problem: "an app needs a client_id and at least one callback URL".into(),
            });
        }
    }
    Ok(())
}

fn positive(seconds: u64, key: &str) -> Result<Duration, ConfigError> {
    if seconds == 0 {
        return Err(ConfigError::Invalid {
            key: key.into(),
            problem: "must be at least 1 second".into(),
        });
    }
    Ok(Duration::from_secs(seconds))
}

/// GitHub logins: 1–39 ASCII letters, digits and single hyphens, not at either end.
fn check_login(login: &str, key: &str) -> Result<(), ConfigError> {
    let ok = (1..=39).contains(&login.len())
        && login
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !login.starts_with('-')
        && !login.ends_with('-')
        && !login.contains("--");
    if ok {
        Ok(())
    } else {
        Err(ConfigError::Invalid {
            key: key.into(),
            problem: format!(
                "{login:?} is not a GitHub login (1-39 letters, digits or single hyphens)"
            ),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn base() -> Config {
        Config::new(
            Url::parse("http://localhost:5003").unwrap(),
            PathBuf::from("x.db"),
        )
    }

    #[test]
    fn a_file_with_an_unknown_key_is_refused_naming_it() {
        let error = toml::from_str::<ConfigFile>("publik_url = \"http://x\"").unwrap_err();
        assert!(error.to_string().contains("publik_url"), "{error}");
    }

    #[test]
    fn apps_and_users_are_read_and_secrets_kept_only_hashed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("demo-users.txt"), "alice:pw-a\nbob:pw-b\n").unwrap();
        let file: ConfigFile = toml::from_str(
            r#"
            users_file = "demo-users.txt"
            token_lifetime_seconds = 5
            [[users]]
            login = "carol"
            password = "pw-c"
            [[apps]]
            client_id = "Iv1.sandbox"
            name = "Okta"
            client_secret = "s3cret"
            callback_urls = ["http://localhost:9400/oauth2/v1/sts/callback"]
            "#,
        )
        .unwrap();
        let mut config = base();
        file.apply(&mut config, dir.path()).unwrap();
        let logins: Vec<_> = config.users.iter().map(|u| u.login.as_str()).collect();
        assert_eq!(logins, ["alice", "bob", "carol"]);
        assert_eq!(config.users[0].name, "Alice");
        assert_eq!(config.token_lifetime, Duration::from_secs(5));
        assert_eq!(config.apps[0].client_secret_sha256, digest("s3cret"));
        assert!(!format!("{config:?}").contains("s3cret"));
        assert!(!format!("{config:?}").contains("pw-a"));
    }

    #[test]
    fn bad_values_are_refused_naming_the_key() {
        for (text, key) in [
            ("token_lifetime_seconds = 0", "token_lifetime_seconds"),
            ("rate_limit_per_hour = 0", "rate_limit_per_hour"),
            (
                "[[apps]]\nclient_id = \"a\"\nname = \"A\"\ncallback_urls = [\"http://x/cb\"]",
                "apps[0].client_secret",
            ),
            (
                "[[apps]]\nclient_id = \"a\"\nname = \"A\"\nclient_secret = \"s\"\ncallback_urls = []",
                "apps[0].callback_urls",
            ),
            (
                "[[users]]\nlogin = \"-bad\"\npassword = \"p\"",
                "users[0].login",
            ),
        ] {
            let file: ConfigFile = toml::from_str(text).unwrap();
            let error = file.apply(&mut base(), Path::new(".")).unwrap_err();
            assert!(error.to_string().contains(key), "{text}: {error}");
        }
    }

    #[test]
    fn an_app_built_in_code_needs_a_callback() {
        let mut config = base();
        config.apps.push(App::new(
            "a",
            "A",
            &SecretString::from("s".to_owned()),
            Vec::new(),
        ));
        assert!(validate(&config).is_err());
    }
}
