//! `secure-agent github0`: the offline GitHub sandbox (crate `github0`) on its own port
//! (default 5003), labelled "sandbox" on every page. Web pages and OAuth at its root
//! (`/login/oauth/authorize`, `/login/oauth/access_token`), the REST API under `/api/v3`, the MCP
//! endpoint at `/mcp`.
//!
//! Configuration, later sources winning: the TOML file (`--config`, default
//! `<data-dir>/github0.toml` when present: `public_url`, `token_lifetime_seconds`,
//! `refresh_token_lifetime_seconds`, `rate_limit_per_hour`, `users_file`, `[[users]]`,
//! `[[apps]]`), then flags and their environment variables. People also come from
//! `--users-file` (`login:password` lines; default `<data-dir>/demo-users.txt`, the file `up`
//! writes for idp0's demo users, when present). One OAuth app can be given without a file:
//! `--client-id`, `--client-name`, `--callback-url` (repeatable), with its secret only from the
//! environment (`GITHUB0_CLIENT_SECRET`), never a flag.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use github0::{App, Config, ConfigFile, Github0};
use secrecy::SecretString;
use url::Url;

use crate::ServiceArgs;

/// The default port (ARCHITECTURE §8).
pub(crate) const DEFAULT_PORT: u16 = 5003;

#[derive(clap::Args)]
pub(crate) struct Github0Args {
    #[command(flatten)]
    service: ServiceArgs,
    /// Port to listen on (0 picks a free one). Env: GITHUB0_PORT.
    #[arg(long, env = "GITHUB0_PORT", default_value_t = DEFAULT_PORT)]
    port: u16,
    /// Address to bind. Env: GITHUB0_BIND.
    #[arg(long, env = "GITHUB0_BIND", default_value = "127.0.0.1")]
    bind: String,
    /// The URL people and clients use to reach the sandbox; every URL it answers with is built
    /// from it. Env: GITHUB0_PUBLIC_URL. Default: http://localhost:<port>.
    #[arg(long, env = "GITHUB0_PUBLIC_URL")]
    public_url: Option<Url>,
    /// TOML configuration (apps, people, lifetimes). Env: GITHUB0_CONFIG.
    /// Default: <data-dir>/github0.toml when it exists.
    #[arg(long, env = "GITHUB0_CONFIG")]
    config: Option<PathBuf>,
    /// `login:password` lines: the people who can sign in. Env: GITHUB0_USERS_FILE.
    /// Default: <data-dir>/demo-users.txt when it exists (idp0's demo users, as `up` writes them).
    #[arg(long, env = "GITHUB0_USERS_FILE")]
    users_file: Option<PathBuf>,
    /// The SQLite database file. Env: GITHUB0_DATABASE. Default: <data-dir>/github0.db.
    #[arg(long, env = "GITHUB0_DATABASE")]
    database: Option<PathBuf>,
    /// An OAuth app's client id (its secret from GITHUB0_CLIENT_SECRET). Env: GITHUB0_CLIENT_ID.
    #[arg(long, env = "GITHUB0_CLIENT_ID")]
    client_id: Option<String>,
    /// That app's name on the consent page. Env: GITHUB0_CLIENT_NAME.
    #[arg(long, env = "GITHUB0_CLIENT_NAME", default_value = "Okta")]
    client_name: String,
    /// That app's registered callback URL (repeatable, or comma-separated in
    /// GITHUB0_CALLBACK_URL), e.g. http://localhost:9400/oauth2/v1/sts/callback.
    #[arg(
        long = "callback-url",
        env = "GITHUB0_CALLBACK_URL",
        value_delimiter = ','
    )]
    callback_urls: Vec<Url>,
    /// Lifetime of `ghu_` access tokens, e.g. `8h`, `30m`, `60s`. Env: GITHUB0_TOKEN_LIFETIME.
    /// Default: 8h (GitHub's).
    #[arg(long, env = "GITHUB0_TOKEN_LIFETIME", value_parser = parse_duration)]
    token_lifetime: Option<Duration>,
    /// Lifetime of `ghr_` refresh tokens, e.g. `183d`. Env: GITHUB0_REFRESH_TOKEN_LIFETIME.
    /// Default: 15811200s (GitHub's six months).
    #[arg(long, env = "GITHUB0_REFRESH_TOKEN_LIFETIME", value_parser = parse_duration)]
    refresh_token_lifetime: Option<Duration>,
    /// REST requests (and MCP tool calls) per access token and hour. Env: GITHUB0_RATE_LIMIT.
    /// Default: 5000.
    #[arg(long, env = "GITHUB0_RATE_LIMIT")]
    rate_limit: Option<u32>,
}

/// `500ms`, `15s`, `30m`, `8h`, `183d`, or a plain number of seconds; at least one second.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 60s, 30m, 8h or 183d"))?;
    let seconds = match unit.trim() {
        "" | "s" => number,
        "m" => number.saturating_mul(60),
        "h" => number.saturating_mul(3600),
        "d" => number.saturating_mul(86_400),
        _ => return Err(format!("{text:?}: the unit must be s, m, h or d")),
    };
    if seconds == 0 {
        return Err("the duration must be at least one second".into());
    }
    Ok(Duration::from_secs(seconds))
}

/// The runtime configuration from the file, the flags and the environment, and whether its
/// public URL was given (by `--public-url` or the file) rather than defaulted from `port`.
fn config(args: &Github0Args, port: u16) -> anyhow::Result<(Config, bool)> {
    let data_dir = &args.service.data_dir;
    let public_url = match &args.public_url {
        Some(url) => url.clone(),
        None => Url::parse(&format!("http://localhost:{port}"))?,
    };
    let database = args
        .database
        .clone()
        .unwrap_or_else(|| data_dir.join("github0.db"));
    let mut config = Config::new(public_url, database);
    let file = args
        .config
        .clone()
        .or_else(|| Some(data_dir.join("github0.toml")).filter(|p| p.exists()));
    let mut url_given = args.public_url.is_some();
    if let Some(path) = &file {
        let base = path.parent().map(PathBuf::from).unwrap_or_default();
        let loaded = ConfigFile::load(path)?;
        url_given |= loaded.public_url.is_some();
        loaded.apply(&mut config, &base)?;
        if let Some(url) = &args.public_url {
            config.public_url = url.clone();
        }
    }
    let users_file = args
        .users_file
        .clone()
        .or_else(|| Some(data_dir.join("demo-users.txt")).filter(|p| p.exists() && file.is_none()));
    if let Some(path) = users_file {
        config
            .users
            .extend(github0::config::read_users_file(&path)?);
    }
    if let Some(client_id) = &args.client_id {
        let secret = std::env::var("GITHUB0_CLIENT_SECRET").map_err(|_| {
            anyhow::anyhow!(
                "GITHUB0_CLIENT_SECRET: --client-id {client_id} needs its client secret in this environment variable"
            )
        })?;
        if args.callback_urls.is_empty() {
            anyhow::bail!(
                "--callback-url: --client-id {client_id} needs at least one registered callback URL"
            );
        }
        config.apps.push(App::new(
            client_id.clone(),
            args.client_name.clone(),
            &SecretString::from(secret),
            args.callback_urls.clone(),
        ));
    }
    if let Some(lifetime) = args.token_lifetime {
        config.token_lifetime = lifetime;
    }
    if let Some(lifetime) = args.refresh_token_lifetime {
        config.refresh_token_lifetime = lifetime;
    }
    if let Some(limit) = args.rate_limit {
        anyhow::ensure!(limit > 0, "--rate-limit: must be at least 1");
        config.rate_limit_per_hour = limit;
    }
    github0::config::validate(&config)?;
    Ok((config, url_given))
}

pub(crate) async fn run(args: Github0Args) -> anyhow::Result<()> {
    run_on(args, None, crate::shutdown_signal()).await
}

/// Serves the sandbox on `listener` when the caller already bound its port, until `shutdown`.
pub(crate) async fn run_on(
    args: Github0Args,
    listener: Option<tokio::net::TcpListener>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    // Configuration errors end the command before any port is bound (ARCHITECTURE §4).
    let (mut config, url_given) = config(&args, args.port)?;
    let listener = match listener {
        Some(listener) => listener,
        None => tokio::net::TcpListener::bind((args.bind.as_str(), args.port))
            .await
            .with_context(|| {
                format!("cannot listen on {}:{} (use --port)", args.bind, args.port)
            })?,
    };
    let local = listener.local_addr()?;
    if !url_given {
        config.public_url = Url::parse(&format!("http://localhost:{}", local.port()))?;
    }
    if config.apps.is_empty() {
        tracing::warn!(
            "no OAuth app is registered: give --client-id/--callback-url (secret in GITHUB0_CLIENT_SECRET) or [[apps]] in --config"
        );
    }
    if config.users.is_empty() {
        tracing::warn!(
            "nobody can sign in: give --users-file (login:password lines) or [[users]] in --config"
        );
    }
    let github0 = Github0::open(config, protocol::clock::system()).await?;
    let cfg = github0.config();
    println!("github0 sandbox (offline GitHub stand-in) is running");
    println!(
        "  web + OAuth:  {}   (listening on {local})",
        cfg.web_base()
    );
    println!("  authorize:    {}/login/oauth/authorize", cfg.web_base());
    println!(
        "  token:        {}/login/oauth/access_token",
        cfg.web_base()
    );
    println!("  REST API:     {}", cfg.api_base());
    println!("  MCP:          {}", cfg.mcp_url());
    println!(
        "  apps: {}   people: {}   token lifetime: {}s",
        cfg.apps.len(),
        cfg.users.len(),
        cfg.token_lifetime.as_secs()
    );
    github0::serve(listener, &github0, shutdown).await?;
    println!("github0 sandbox stopped");
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_with_their_unit() {
        assert_eq!(parse_duration("60").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_duration("30m").unwrap(), Duration::from_secs(1800));
        assert_eq!(parse_duration("8h").unwrap(), Duration::from_secs(28_800));
        assert_eq!(
            parse_duration("183d").unwrap(),
            Duration::from_secs(15_811_200)
        );
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("5y").is_err());
    }
}
