//! `secure-agent okta bootstrap | validate | rollback`: configures a person's Okta org for the
//! stack from an API token (OKTA.md §4), writes the env files every service reads in the
//! sample's layout (OKTA.md §5), checks the setup end to end, and removes it again. Unlike the
//! sample's scripts, bootstrap is idempotent and resumable (a state file written after every
//! step), rollback keeps track of what it could not delete, and validate performs real token
//! requests. The API token comes from `OKTA_API_TOKEN` or a prompt that does not echo, and is
//! never shown, logged or written.

mod bootstrap;
mod client;
mod files;
mod rollback;
mod state;
mod validate;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Subcommand;
use secrecy::SecretString;

use self::client::Polling;

#[derive(Subcommand)]
pub(crate) enum OktaCommand {
    /// Create the authorization server, apps, AI agent, connection, policy and trusted origins
    /// in an Okta org, and write the env files (idempotent; re-run to resume).
    Bootstrap(bootstrap::BootstrapArgs),
    /// Check the files, the key, discovery and the agent's client authentication; with
    /// --login, a real login, both ID-JAG steps and an MCP tools/list.
    Validate(validate::ValidateArgs),
    /// Delete what bootstrap created, in reverse order (safe to re-run).
    Rollback(rollback::RollbackArgs),
}

pub(crate) async fn run(command: OktaCommand) -> anyhow::Result<()> {
    match command {
        OktaCommand::Bootstrap(args) => bootstrap::run(args).await,
        OktaCommand::Validate(args) => validate::run(args).await,
        OktaCommand::Rollback(args) => rollback::run(args).await,
    }
}

/// Options of every Okta command that calls the management API.
#[derive(clap::Args, Clone)]
pub(crate) struct ApiArgs {
    /// Where the env files, the report and the state file are (and are written).
    #[arg(long, default_value = ".")]
    out: PathBuf,
    /// Answer yes to every question (for scripts).
    #[arg(long)]
    yes: bool,
    /// How often a running Okta operation (202 Accepted) is polled, in milliseconds.
    #[arg(long, default_value_t = 2000, value_name = "MS")]
    poll_interval_ms: u64,
    /// How long an Okta operation may run before the command gives up, in seconds.
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    poll_deadline_secs: u64,
}

impl ApiArgs {
    fn polling(&self) -> Polling {
        Polling {
            interval: Duration::from_millis(self.poll_interval_ms.max(1)),
            deadline: Duration::from_secs(self.poll_deadline_secs.max(1)),
        }
    }
}

/// The org's origin from `--org`: `https://<org>`, the sample's bare `OKTA_DOMAIN`
/// (`dev-123.okta.com`), or `http://` for a loopback host only (a local stand-in such as idp0).
pub(crate) fn parse_org(text: &str) -> anyhow::Result<String> {
    let text = text.trim();
    let with_scheme = if text.contains("://") {
        text.to_owned()
    } else {
        format!("https://{text}")
    };
    let url = url::Url::parse(&with_scheme)
        .ok()
        .filter(|u| u.host_str().is_some_and(|h| !h.is_empty()))
        .with_context(|| {
            format!("--org {text:?} is not an org URL (e.g. https://dev-123.okta.com)")
        })?;
    if !url.username().is_empty() || url.password().is_some() {
        bail!("--org {text:?} must not carry credentials");
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        bail!(
            "--org {text:?} has a path: give the org's address only (e.g. https://dev-123.okta.com), \
             not an authorization server or Admin Console URL"
        );
    }
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => bail!(
            "--org {text:?} uses http: Okta orgs are https (plain http is accepted only for a \
             local stand-in on a loopback address)"
        ),
        other => bail!("--org {text:?}: the scheme {other} is not http(s)"),
    }
    Ok(url.origin().ascii_serialization())
}

pub(crate) fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// The API token: `OKTA_API_TOKEN`, else a prompt on the terminal that does not echo.
pub(crate) fn api_token() -> anyhow::Result<SecretString> {
    if let Some(token) = std::env::var("OKTA_API_TOKEN")
        .ok()
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
    {
        return Ok(SecretString::from(token));
    }
    if !std::io::stdin().is_terminal() {
        bail!(
            "no API token: set OKTA_API_TOKEN (an Okta API token of a super administrator; \
             Security > API > Tokens)"
        );
    }
    let token = read_hidden("Okta API token (not shown): ")?;
    if token.is_empty() {
        bail!("no API token was entered");
    }
    Ok(SecretString::from(token))
}

/// Reads a line from the terminal with echo turned off (`stty -echo`), restoring it after.
fn read_hidden(prompt: &str) -> anyhow::Result<String> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    eprint!("{prompt}");
    std::io::stderr().flush().ok();
    let stty = |arg: &str| {
        Command::new("stty")
            .arg(arg)
            .stdin(Stdio::inherit())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !stty("-echo") {
        bail!("cannot turn off the terminal's echo to read the API token; set OKTA_API_TOKEN");
    }
    let mut line = String::new();
    let read = std::io::stdin().read_line(&mut line);
    stty("echo");
    eprintln!();
    read.context("reading the API token")?;
    Ok(line.trim().to_owned())
}

/// Asks a yes/no question on the terminal (`--yes` answers yes; no terminal answers no).
pub(crate) fn confirm(question: &str, yes: bool) -> anyhow::Result<bool> {
    use std::io::Write;
    if yes {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        bail!("{question} Pass --yes to proceed without a terminal.");
    }
    eprint!("{question} [y/N] ");
    std::io::stderr().flush().ok();
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("reading the answer")?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_org_is_an_https_origin_or_a_loopback_http_one() {
        for (given, origin) in [
            ("dev-123.okta.com", "https://dev-123.okta.com"),
            ("https://dev-123.okta.com/", "https://dev-123.okta.com"),
            ("http://127.0.0.1:9400", "http://127.0.0.1:9400"),
            ("http://localhost:9400/", "http://localhost:9400"),
        ] {
            assert_eq!(parse_org(given).unwrap(), origin, "{given}");
        }
        for (given, says) in [
            ("https://dev-123.okta.com/oauth2/default", "has a path"),
            ("http://dev-123.okta.com", "uses http"),
            ("ftp://dev-123.okta.com", "not http(s)"),
            ("https://", "not an org URL"),
        ] {
            let error = parse_org(given).unwrap_err().to_string();
            assert!(error.contains(says), "{given}: {error}");
        }
    }
}
