//! `secure-agent login`: a person's OpenID Connect login from the shell (ARCHITECTURE §3, §5.1).
//! Authorization code with PKCE S256, `state` and `nonce`, redirected to a loopback listener on an
//! ephemeral port (RFC 8252 §7.3: `http://127.0.0.1:<port>/callback`) as a public native client.
//! The browser is opened for the person (or the URL printed), with a deadline; `--username U
//! --password-stdin` instead drives idp0's login form over HTTP, for scripts.
//!
//! The ID token is verified (signature via the discovered JWKS, `iss`, `aud`, `exp`, `nonce`)
//! and cached with the refresh token, 0600, per issuer ([`cache`]); `mcp` and `token exchange`
//! use it when given no token ([`cached_id_token`]), refreshing it when it has expired. No token
//! is ever printed: `--show` prints the cached ID token's decoded claims.

mod cache;
pub(crate) mod loopback;
pub(crate) mod pkce;
mod scripted;

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use protocol::token_client::{ClientAuth, TokenClient};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use self::cache::{CachedLogin, Endpoints};
use self::loopback::Loopback;
use self::pkce::Pkce;
use crate::ServiceArgs;
use crate::settings::Settings;

pub(crate) use self::cache::id_token as cached_id_token;

/// What a login asks for by default (`offline_access`: a refresh token, so the cache outlives
/// the ID token).
const DEFAULT_SCOPES: &str = "openid profile email offline_access";

#[derive(clap::Args)]
pub(crate) struct LoginArgs {
    #[command(flatten)]
    service: ServiceArgs,
    /// dotenv files with the sample's variable names (repeatable). Default: <data-dir>/agent0.env.
    #[arg(long = "env-file")]
    env_files: Vec<PathBuf>,
    /// The identity provider's issuer. Env: OKTA_DOMAIN.
    #[arg(long)]
    issuer: Option<String>,
    /// Your native (public, PKCE) application's client id at the IdP. Default: `secure-agent-cli`
    /// for a development idp0. Env: SECURE_AGENT_CLI_CLIENT_ID.
    #[arg(long, value_name = "ID")]
    client_id: Option<String>,
    /// Space-separated scopes to request.
    #[arg(long, default_value = DEFAULT_SCOPES)]
    scopes: String,
    /// Log in without a browser as this user, through idp0's login form (for scripts; needs
    /// --password-stdin).
    #[arg(long, requires = "password_stdin")]
    username: Option<String>,
    /// Read the password from standard input (with --username).
    #[arg(long, requires = "username")]
    password_stdin: bool,
    /// Do not try to open a browser; only print the URL.
    #[arg(long)]
    no_browser: bool,
    /// Give up when the login has not completed after this many seconds.
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    timeout: u64,
    /// Print the cached login's decoded ID token claims (never the token itself) and exit.
    #[arg(long, conflicts_with_all = ["username", "password_stdin", "no_browser"])]
    show: bool,
}

pub(crate) async fn run(args: LoginArgs) -> anyhow::Result<()> {
    let data_dir = &args.service.data_dir;
    let settings = Settings::load(&args.env_files, data_dir, devstack::AGENT0_ENV)?;
    let domain = settings.require(args.issuer.as_deref(), "--issuer", "OKTA_DOMAIN")?;
    let issuer = devstack::issuer_from_okta_domain(&domain);
    if args.show {
        return show(&args, &issuer);
    }
    let client_id = client_id(&args, &settings, &issuer)?;
    let scopes = protocol::Scopes::parse(&args.scopes).context("--scopes")?;
    if !scopes.contains("openid") {
        bail!("--scopes must include openid: the login is for an ID token");
    }
    let credentials = match &args.username {
        Some(username) => Some((username.clone(), read_password()?)),
        None => None,
    };

    let endpoints = Endpoints::discover(&issuer).await?;
    let pkce = Pkce::new();
    let state = weblogin::random_token();
    let nonce = weblogin::random_token();
    let mut listener = Loopback::bind(&state).await?;
    let mut url = url::Url::parse(&endpoints.authorization)
        .context("the authorization_endpoint is not a URL")?;
    url.query_pairs_mut()
        .append_pair("client_id", &client_id)
        .append_pair("redirect_uri", &listener.redirect_uri)
        .append_pair("response_type", "code")
        .append_pair("scope", &scopes.to_string())
        .append_pair("state", &state)
        .append_pair("nonce", &nonce)
        .append_pair("code_challenge", &pkce.challenge)
        .append_pair("code_challenge_method", "S256");

    let timeout = Duration::from_secs(args.timeout.max(1));
    let callback = tokio::time::timeout(timeout, async {
        match &credentials {
            Some((username, password)) => {
                scripted::log_in(url.as_str(), username, password, &listener.redirect_uri).await?;
            }
            None => open_browser(url.as_str(), args.no_browser),
        }
        listener.callback().await
    })
    .await
    .map_err(|_| {
        anyhow::anyhow!(
            "the login did not complete within {} s; run `secure-agent login` again (--timeout \
             sets the limit)",
            timeout.as_secs()
        )
    })??;

    if let Some(error) = callback.error {
        bail!(
            "the identity provider answered {error}: {}",
            callback.error_description.unwrap_or_default()
        );
    }
    if let Some(iss) = &callback.iss
        && iss != &issuer
    {
        bail!("the authorization response came from {iss}, not {issuer} (RFC 9207)");
    }
    let code = callback
        .code
        .context("the authorization response has no code")?;
    let tokens = TokenClient::new()?
        .request(
            &endpoints.token,
            &ClientAuth::None {
                client_id: client_id.clone(),
            },
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", &listener.redirect_uri),
                ("code_verifier", pkce.verifier.expose_secret()),
            ],
        )
        .await
        .context("redeeming the authorization code")?;
    let id_token = tokens
        .id_token
        .context("the identity provider sent no ID token")?;
    let claims = endpoints
        .verify_id_token(&issuer, &client_id, &id_token)
        .await?;
    let nonce_matches = claims
        .nonce
        .as_deref()
        .is_some_and(|n| protocol::constant_time::is_equal(n, nonce));
    if !nonce_matches {
        bail!("the ID token's nonce does not match this login");
    }
    let has_refresh = tokens.refresh_token.is_some();
    let file = cache::save(
        data_dir,
        &CachedLogin {
            issuer: issuer.clone(),
            client_id: client_id.clone(),
            id_token,
            id_token_expires_at: claims.exp,
            refresh_token: tokens.refresh_token,
        },
    )?;
    let who = claims
        .email
        .clone()
        .or_else(|| claims.name.clone())
        .unwrap_or_else(|| claims.sub.clone());
    let minutes = (claims.exp - protocol::clock::system().now()).max(0) / 60;
    let what = if has_refresh {
        "and a refresh token are"
    } else {
        "is"
    };
    println!(
        "Logged in to {issuer} as {who} (client {client_id}).\nThe ID token (valid for {minutes} \
         min) {what} cached in {}; `secure-agent mcp` and `secure-agent token exchange` use it \
         when given no --id-token.",
        file.display()
    );
    Ok(())
}

/// `--client-id`, else `SECURE_AGENT_CLI_CLIENT_ID`, else `secure-agent-cli` for a development
/// idp0 (its generated configuration in the data directory, or an issuer on this machine).
fn client_id(args: &LoginArgs, settings: &Settings, issuer: &str) -> anyhow::Result<String> {
    if let Some(id) = settings.get(args.client_id.as_deref(), "SECURE_AGENT_CLI_CLIENT_ID") {
        return Ok(id);
    }
    let generated = std::fs::read_to_string(args.service.data_dir.join(devstack::CONFIG_FILE))
        .ok()
        .and_then(|text| toml::from_str::<idp0::config::ConfigFile>(&text).ok())
        .is_some_and(|file| {
            file.development
                && file
                    .clients
                    .iter()
                    .any(|c| c.client_id == devstack::CLI_CLIENT)
        });
    let local = url::Url::parse(issuer).is_ok_and(|u| match u.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    });
    if generated || local {
        return Ok(devstack::CLI_CLIENT.to_owned());
    }
    bail!(
        "missing --client-id (or SECURE_AGENT_CLI_CLIENT_ID): the client id of your native \
         application at {issuer} (public client, PKCE, redirect URI http://127.0.0.1/callback on \
         any port)"
    )
}

fn read_password() -> anyhow::Result<SecretString> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .context("reading the password from standard input")?;
    let password = text.strip_suffix('\n').unwrap_or(&text);
    let password = password.strip_suffix('\r').unwrap_or(password);
    if password.is_empty() {
        bail!("--password-stdin: standard input was empty");
    }
    Ok(SecretString::from(password.to_owned()))
}

/// Shows the URL and opens the browser when one can be started; never waits for it.
pub(crate) fn open_browser(url: &str, no_browser: bool) {
    eprintln!("To log in, open this URL in your browser:\n\n  {url}\n");
    if no_browser {
        return;
    }
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    // The browser outlives this command and inherits its environment: an API token of
    // `okta validate --login` must not go with it.
    let started = Command::new(opener)
        .arg(url)
        .env_remove("OKTA_API_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    match started {
        Ok(_) => eprintln!("(opened with {opener}; waiting for the login to complete)"),
        Err(_) => eprintln!("(waiting for the login to complete)"),
    }
}

/// `--show`: the cached login's decoded claims, never the token.
fn show(args: &LoginArgs, issuer: &str) -> anyhow::Result<()> {
    let data_dir = &args.service.data_dir;
    let Some(login) = cache::load(data_dir, issuer)? else {
        bail!("no login is cached for {issuer}: run `secure-agent login`");
    };
    let claims = protocol::verify::decode_unverified(login.id_token.expose_secret())
        .context("the cached ID token cannot be decoded: run `secure-agent login` again")?;
    let now = protocol::clock::system().now();
    let out = json!({
        "issuer": login.issuer,
        "client_id": login.client_id,
        "expires_at": login.id_token_expires_at,
        "expired": login.id_token_expires_at <= now,
        "refresh_token": login.refresh_token.is_some(),
        "cache_file": cache::path(data_dir, issuer),
        "claims": claims,
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}
