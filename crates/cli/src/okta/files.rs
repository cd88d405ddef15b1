//! What bootstrap writes under `--out` (OKTA.md §5): the sample's four env files, 0600, with
//! the variables secure-agent's `agent`, `todo-mcp` and `todo-app` read (and the sample's own
//! services); the agent's private key (0600); and `okta-config-report.md`, which names what was
//! created with links to the Admin Console and holds no secret. A file that would change is
//! first copied to `NAME.backup` (`NAME.1.backup`, …); one that would not is left alone.
//! `SESSION_SECRET`, a person's LLM settings and, when Okta no longer shows it, a client secret
//! are kept from the file being replaced.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use protocol::keys::{KeyKind, SigningKey, expose_pem};
use secrecy::ExposeSecret;

use super::bootstrap::{App, KEY_FILE, Outcome, Plan};
use super::state::State;

pub(crate) const REPORT_FILE: &str = "okta-config-report.md";
pub(crate) const AGENT_APP_ENV: &str = "packages/agent0/.env.app";
pub(crate) const AGENT_ENV: &str = "packages/agent0/.env.agent";
pub(crate) const TODO_APP_ENV: &str = "packages/todo0/.env.app";
pub(crate) const TODO_MCP_ENV: &str = "packages/todo0/.env.mcp";

/// LLM settings a person may have put in `.env.agent`: kept when it is written again.
const LLM_VARS: [&str; 11] = [
    "LLM_PROVIDER",
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_MODEL",
    "ANTHROPIC_BASE_URL",
    "AWS_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "BEDROCK_MODEL_ID",
    "OPENAI_BASE_URL",
    "OPENAI_MODEL",
];

/// What [`write_all`] changed.
#[derive(Default)]
pub(crate) struct Written {
    pub(crate) changed: Vec<PathBuf>,
    pub(crate) backups: Vec<(PathBuf, PathBuf)>,
}

/// The agent's key at `path`: read when it exists, else generated (RS256) and written 0600.
pub(crate) fn agent_key(path: &Path) -> anyhow::Result<SigningKey> {
    match std::fs::read_to_string(path) {
        Ok(pem) => {
            // A key others can read may be known to them; in a shared --out folder it may even
            // be theirs, planted to have its public half uploaded as the agent's. Only a key
            // that is the owner's alone is used.
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(path)
                    .with_context(|| format!("reading {}", path.display()))?
                    .permissions()
                    .mode();
                if mode & 0o077 != 0 {
                    bail!(
                        "{} has mode {:o}: others may know this private key, so it is not                          uploaded as the agent's. If it is yours alone, run `chmod 600` on it;                          otherwise move it away to have a new one generated",
                        path.display(),
                        mode & 0o777
                    );
                }
            }
            let key = SigningKey::from_pem(&pem, None).ok().filter(|k| {
                serde_json::to_value(k.public_jwk()).is_ok_and(|jwk| jwk["kty"] == "RSA")
            });
            key.with_context(|| {
                format!(
                    "{} is not a usable RSA private key (Okta's agents sign with RS256); move it \
                     away to have a new one generated",
                    path.display()
                )
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
            let key = SigningKey::generate(KeyKind::Rsa)?;
            httpserve::fsutil::write_private(path, expose_pem(&key))
                .with_context(|| format!("writing {}", path.display()))?;
            Ok(key)
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Writes the four env files.
pub(crate) fn write_all(out: &Path, plan: &Plan, outcome: &Outcome) -> anyhow::Result<Written> {
    let okta_domain = devstack::okta_domain_for(&plan.org);
    let as_issuer = plan.as_issuer(&outcome.as_id);
    let mcp_url = format!("{}/mcp", plan.mcp_origin());
    let mut written = Written::default();
    let header = |file: &str| {
        format!(
            "# {file}, written by `secure-agent okta bootstrap` for {} (state: {}).\n\
             # Written again at each bootstrap: a version that differs is first kept as .backup.\n",
            plan.org,
            super::state::STATE_FILE
        )
    };

    let path = out.join(AGENT_APP_ENV);
    let old = read_old(&path)?;
    let text = header(AGENT_APP_ENV)
        + "\n# Web app: people log in at the org authorization server\n"
        + &lines(&[
            ("PORT", plan.agent_port.to_string()),
            ("SESSION_SECRET", session_secret(&old)),
            ("OKTA_DOMAIN", okta_domain.clone()),
            ("OKTA_CLIENT_ID", outcome.agent0.client_id.clone()),
            ("OKTA_CLIENT_SECRET", secret(&outcome.agent0, &old, &path)?),
            (
                "OKTA_REDIRECT_URI",
                format!("{}/callback", plan.agent_origin()),
            ),
        ])?;
    put(&path, old.as_ref(), &text, &mut written)?;

    let path = out.join(AGENT_ENV);
    let old = read_old(&path)?;
    let text = header(AGENT_ENV)
        + "\n# MCP client: todo0's MCP server\n"
        + &lines(&[
            ("MCP_SERVER_URL", mcp_url.clone()),
            ("MCP_RESOURCE_INDICATOR", plan.audience.clone()),
        ])?
        + &llm_section(old.as_ref())?
        + "\n# Cross-App Access: the AI agent, its key, the MCP authorization server\n"
        + &lines(&[
            ("OKTA_DOMAIN", okta_domain.clone()),
            ("AI_AGENT_ID", outcome.agent_id.clone()),
            ("AI_AGENT_PRIVATE_KEY_FILE", KEY_FILE.to_owned()),
            ("AI_AGENT_PRIVATE_KEY_KID", outcome.kid.clone()),
            (
                "AI_AGENT_TODO_MCP_SERVER_SCOPES_TO_REQUEST",
                devstack::SAMPLE_AGENT_SCOPES.to_owned(),
            ),
            ("MCP_AUTHORIZATION_SERVER", as_issuer.clone()),
            (
                "MCP_AUTHORIZATION_SERVER_TOKEN_ENDPOINT",
                format!("{as_issuer}/v1/token"),
            ),
        ])?;
    put(&path, old.as_ref(), &text, &mut written)?;

    let path = out.join(TODO_APP_ENV);
    let old = read_old(&path)?;
    let text = header(TODO_APP_ENV)
        + "\n# Web app: people log in at the MCP authorization server, whose tokens the REST API accepts\n"
        + &lines(&[
            ("PORT", plan.todo_port.to_string()),
            ("SESSION_SECRET", session_secret(&old)),
            ("OKTA_ISSUER", as_issuer.clone()),
            ("OKTA_CLIENT_ID", outcome.todo0.client_id.clone()),
            ("OKTA_CLIENT_SECRET", secret(&outcome.todo0, &old, &path)?),
            (
                "OKTA_REDIRECT_URI",
                format!("{}/callback", plan.todo_origin()),
            ),
            ("EXPECTED_AUDIENCE", plan.audience.clone()),
        ])?;
    put(&path, old.as_ref(), &text, &mut written)?;

    let path = out.join(TODO_MCP_ENV);
    let old = read_old(&path)?;
    let text = header(TODO_MCP_ENV)
        + "\n# MCP server: accepts the MCP authorization server's tokens for its resource\n"
        + &lines(&[
            ("MCP_PORT", plan.mcp_port.to_string()),
            ("MCP_OKTA_ISSUER", as_issuer),
            ("MCP_EXPECTED_AUDIENCE", plan.audience.clone()),
        ])?;
    put(&path, old.as_ref(), &text, &mut written)?;
    Ok(written)
}

/// A file's old text and its variables.
struct Old {
    bytes: Vec<u8>,
    vars: Vec<(String, String)>,
}

impl Old {
    fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .iter()
            .rev()
            .find(|(n, v)| n == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }
}

fn read_old(path: &Path) -> anyhow::Result<Option<Old>> {
    match std::fs::read(path) {
        Ok(bytes) => {
            let vars =
                devstack::dotenv::parse(&String::from_utf8_lossy(&bytes)).unwrap_or_default();
            Ok(Some(Old { bytes, vars }))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// `NAME=value` lines, quoted where dotenv needs it. A value with a line break or another
/// control character (from an answer of the org, a flag or a replaced file) is refused: written
/// as it is, it would add lines of its own choosing to the file.
fn lines(vars: &[(&str, String)]) -> anyhow::Result<String> {
    vars.iter()
        .map(|(name, value)| {
            if value.chars().any(char::is_control) {
                bail!("{name}: the value holds a line break or control character; not written");
            }
            Ok(if value.contains([' ', '#', '"', '\'', '\\']) {
                format!(
                    "{name}=\"{}\"\n",
                    value.replace('\\', "\\\\").replace('"', "\\\"")
                )
            } else {
                format!("{name}={value}\n")
            })
        })
        .collect()
}

/// The kept `SESSION_SECRET` (a 64+ character hex one), else a new 256-bit one in hex.
fn session_secret(old: &Option<Old>) -> String {
    if let Some(kept) = old
        .as_ref()
        .and_then(|o| o.get("SESSION_SECRET"))
        .filter(|v| v.len() >= 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return kept.to_owned();
    }
    // random_token is 32 random bytes in base64url: its characters in hex keep all 256 bits.
    weblogin::random_token()
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The app's client secret: as Okta showed it, else the one the replaced file holds.
fn secret(app: &App, old: &Option<Old>, path: &Path) -> anyhow::Result<String> {
    if let Some(secret) = &app.secret {
        return Ok(secret.expose_secret().to_owned());
    }
    let kept = old
        .as_ref()
        .filter(|o| o.get("OKTA_CLIENT_ID") == Some(app.client_id.as_str()))
        .and_then(|o| o.get("OKTA_CLIENT_SECRET"));
    match kept {
        Some(secret) => Ok(secret.to_owned()),
        None => bail!(
            "Okta did not show the client secret of the app {} and {} does not hold it: \
             generate a new secret for the app in the Admin Console (Applications > the app > \
             Client Credentials) and put it in OKTA_CLIENT_SECRET there",
            app.client_id,
            path.display()
        ),
    }
}

/// The person's own LLM settings when the replaced file names a credential, else the offline
/// model (secure-agent's agent runs with it) and commented placeholders.
fn llm_section(old: Option<&Old>) -> anyhow::Result<String> {
    let kept: Vec<(&str, String)> = old
        .map(|o| {
            LLM_VARS
                .iter()
                .filter_map(|name| o.get(name).map(|v| (*name, v.to_owned())))
                .collect()
        })
        .unwrap_or_default();
    let has_credential = kept.iter().any(|(name, value)| {
        matches!(
            *name,
            "ANTHROPIC_API_KEY" | "AWS_ACCESS_KEY_ID" | "OPENAI_BASE_URL"
        ) && !value.to_ascii_lowercase().starts_with("your")
    });
    if has_credential {
        return Ok("\n# LLM (kept from the file this one replaced)\n".to_owned() + &lines(&kept)?);
    }
    Ok("\n# LLM: secure-agent's agent answers with its built-in offline model. For a real model,\n\
     # remove LLM_PROVIDER and set your own key (or the AWS Bedrock lines).\n\
     LLM_PROVIDER=offline\n\
     # ANTHROPIC_API_KEY=your_anthropic_api_key_here\n\
     # ANTHROPIC_MODEL=claude-sonnet-4-6\n\
     # AWS_REGION=us-east-1\n\
     # AWS_ACCESS_KEY_ID=your_aws_access_key_id_here\n\
     # AWS_SECRET_ACCESS_KEY=your_aws_secret_access_key_here\n\
     # BEDROCK_MODEL_ID=your_bedrock_model_id_here\n"
        .to_owned())
}

/// Writes `text` (0600) unless the file holds it; a different earlier version is backed up.
fn put(path: &Path, old: Option<&Old>, text: &str, written: &mut Written) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    match old {
        Some(old) if old.bytes == text.as_bytes() => {
            restrict(path)?;
            return Ok(());
        }
        Some(old) => {
            let backup = back_up(path, &old.bytes)?;
            written.backups.push((path.to_owned(), backup));
        }
        None => {}
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!("{name}.secure-agent-tmp.backup"));
    httpserve::fsutil::write_atomically(path, &tmp, text.as_bytes(), 0o600)
        .with_context(|| format!("writing {}", path.display()))?;
    written.changed.push(path.to_owned());
    Ok(())
}

fn restrict(path: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("restricting {} to 0600", path.display()))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Copies `old` to the first free `NAME.backup`, `NAME.1.backup`, …, 0600.
fn back_up(path: &Path, old: &[u8]) -> anyhow::Result<PathBuf> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    for n in 0..1000 {
        let suffix = if n == 0 {
            String::new()
        } else {
            format!(".{n}")
        };
        let backup = path.with_file_name(format!("{name}{suffix}.backup"));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        match options.open(&backup) {
            Ok(mut file) => {
                file.write_all(old)
                    .and_then(|()| file.sync_all())
                    .with_context(|| format!("writing {}", backup.display()))?;
                return Ok(backup);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e).with_context(|| format!("writing {}", backup.display())),
        }
    }
    bail!(
        "{} has 1000 backups already: delete old ones",
        path.display()
    )
}

/// The Admin Console's host for an Okta org (`dev-1.okta.com` → `dev-1-admin.okta.com`), when
/// the org is one of Okta's domains.
fn admin_host(org: &str) -> Option<String> {
    let host = url::Url::parse(org).ok()?.host_str()?.to_owned();
    let (first, rest) = host.split_once('.')?;
    let okta = [
        "okta.com",
        "oktapreview.com",
        "okta-emea.com",
        "okta-gov.com",
    ];
    okta.contains(&rest)
        .then(|| format!("https://{first}-admin.{rest}"))
}

/// Writes `okta-config-report.md` (0600: it names the org's ids; it holds no secret).
pub(crate) fn write_report(
    out: &Path,
    plan: &Plan,
    state: &State,
    outcome: &Outcome,
    created: &[String],
) -> anyhow::Result<()> {
    let admin = admin_host(&plan.org);
    let link = |path: String| match &admin {
        Some(host) => format!(" — [Admin Console]({host}{path})"),
        None => String::new(),
    };
    let mut text = format!(
        "# Okta configuration for secure-agent\n\nOrg: {}  \nOrg id: {}  \nAPI token's user: {}\n\n\
         ## Resources\n\n",
        plan.org,
        state.org_id.as_deref().unwrap_or("?"),
        outcome.user_login
    );
    let as_issuer = plan.as_issuer(&outcome.as_id);
    text.push_str(&format!(
        "- Authorization server `{}` ({}): issuer {as_issuer}, audience {}{}\n",
        super::bootstrap::AS_NAME,
        outcome.as_id,
        plan.audience,
        link(format!("/admin/oauth2/as/{}", outcome.as_id))
    ));
    let scopes: Vec<&str> = super::bootstrap::SCOPES.iter().map(|(n, _)| *n).collect();
    text.push_str(&format!("  - scopes: {}\n", scopes.join(", ")));
    for (access, policy_id, rule_id) in &outcome.policies {
        text.push_str(&format!(
            "  - policy `{}` ({policy_id}) with rule `{}` ({rule_id})\n",
            access.policy, access.rule
        ));
    }
    for (label, app) in [("agent0", &outcome.agent0), ("todo0", &outcome.todo0)] {
        text.push_str(&format!(
            "- App `{label}` ({}), client id {}, assigned to {}{}\n",
            app.id,
            app.client_id,
            outcome.user_login,
            link(format!(
                "/admin/app/oidc_client/instance/{}/#tab-general",
                app.id
            ))
        ));
    }
    text.push_str(&format!(
        "- AI agent `{}` ({}), key kid {}{}\n",
        super::bootstrap::AGENT_NAME,
        outcome.agent_id,
        outcome.kid,
        link("/admin/ai-agents".to_owned())
    ));
    for connection in &state.agent_connections {
        text.push_str(&format!(
            "  - managed connection {} ({}) to {as_issuer}\n",
            connection.connection_id,
            super::bootstrap::CONNECTION_TYPE
        ));
    }
    for (origin, id) in &outcome.origin_ids {
        text.push_str(&format!(
            "- Trusted origin {origin} ({id}){}\n",
            link("/admin/access/api/trusted_origins".to_owned())
        ));
    }
    text.push_str("\n## Files\n\n");
    for file in [AGENT_APP_ENV, AGENT_ENV, TODO_APP_ENV, TODO_MCP_ENV] {
        text.push_str(&format!("- `{file}` (0600; holds secrets)\n"));
    }
    text.push_str(&format!(
        "- `{}` (0600; the agent's private key)\n- `{}` (what rollback deletes)\n",
        outcome
            .key_file
            .strip_prefix(out)
            .unwrap_or(&outcome.key_file)
            .display(),
        super::state::STATE_FILE
    ));
    text.push_str("\n## This run\n\n");
    if created.is_empty() {
        text.push_str("Nothing was created: everything already existed.\n");
    } else {
        for what in created {
            text.push_str(&format!("- created {what}\n"));
        }
    }
    text.push_str(
        "\n## Next\n\n```\nsecure-agent todo-mcp --env-file packages/todo0/.env.mcp\n\
         secure-agent todo-app --env-file packages/todo0/.env.app\n\
         secure-agent agent --env-file packages/agent0/.env.app --env-file packages/agent0/.env.agent\n\
         secure-agent okta validate --login\n```\n",
    );
    let path = out.join(REPORT_FILE);
    httpserve::fsutil::write_private(&path, &text)
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_admin_console_is_derived_for_okta_domains_only() {
        assert_eq!(
            admin_host("https://dev-123.okta.com").as_deref(),
            Some("https://dev-123-admin.okta.com")
        );
        assert_eq!(admin_host("http://127.0.0.1:9400"), None);
    }

    #[test]
    fn values_are_quoted_where_dotenv_needs_it() {
        let text = lines(&[("A", "x y".into()), ("B", "plain".into())]).unwrap();
        assert_eq!(text, "A=\"x y\"\nB=plain\n");
        let parsed = devstack::dotenv::parse(&text).unwrap();
        assert_eq!(parsed[0].1, "x y");
        let injected = lines(&[("OKTA_CLIENT_ID", "0oa1\nLLM_BASE_URL=http://evil".into())]);
        assert!(injected.is_err(), "a line break would add a variable");
    }
}
