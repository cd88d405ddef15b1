//! The TypeScript sample's own env files for a running development stack (`secure-agent up
//! --sample-env DIR`): its four files, in its layout (OKTA.md §5), with the variable names its
//! code reads, so a person starts the sample's services (`pnpm run start:all` in its checkout)
//! against idp0 and todo0's MCP server, beside secure-agent's own services.
//!
//! What the sample's code does with them decides what is written:
//! * Each of its services loads its own file next to its sources (`packages/agent0/.env.app` and
//!   `.env.agent`, `packages/todo0/.env.app` for the web app, `.env.mcp` for the MCP server) with
//!   Node's `dotenv`, which never overrides a variable the shell already set.
//! * Its services serve plain http on `PORT` / `MCP_PORT` and call themselves
//!   `http://localhost:PORT` (agent0's post-logout URI), so their URLs are http whatever scheme
//!   the stack uses; they get ports of their own ([`SampleTopology`]) so both run at once.
//! * Its agent0 reaches the IdP at `'https://' + OKTA_DOMAIN`, and its MCP server's token
//!   verifier wants an https issuer: against the sample, the stack runs with `--tls`.
//! * Its agent0 reads the key at `path.resolve(<packages/agent0>, AI_AGENT_PRIVATE_KEY_FILE)`, which
//!   takes an absolute path as it is: the file names the data directory's key, and no second copy
//!   of the private key is made.
//! * Its todo0 web app logs people in at `OKTA_ISSUER` by OIDC discovery: the todo0 authorization
//!   server, where the `todo0` client may log in (a custom authorization server, as in the sample's
//!   `.env.app.example`); it is also the issuer of the tokens `EXPECTED_AUDIENCE` names, which is
//!   how secure-agent's own todo0 reads that pair.
//! * Its agent0 stops at start when no LLM is configured. The key is the person's to fill in (a
//!   marked placeholder line, commented out); it is never copied from the environment.
//!
//! Writing again (every `up --sample-env`) changes nothing a person set: `SESSION_SECRET` and the
//! LLM settings of the file being replaced are kept, a file that would not change is left alone,
//! and one that would is first copied to `NAME.backup` (`NAME.1.backup`, … when that is taken) —
//! names the sample's `.gitignore` (`.env.*.backup`) already ignores, since they hold secrets.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use super::{
    AGENT_ID, AGENT0_CLIENT, CONFIG_FILE, Generated, TODO0_CLIENT, TODO0_SERVER, env_line,
    okta_domain_for,
};

/// The sample's env files, relative to its checkout, in the order they are written.
pub const SAMPLE_ENV_FILES: [&str; 4] = [
    "packages/agent0/.env.app",
    "packages/agent0/.env.agent",
    "packages/todo0/.env.app",
    "packages/todo0/.env.mcp",
];

/// What the sample's agent asks for, all at once (it has no step-up), as its bootstrap writes it.
/// `mcp:tools:delete` is not among them: secure-agent's todo0 wants it for `delete-todo` unless it
/// runs with `--scope-policy sample-compatible`.
pub const SAMPLE_AGENT_SCOPES: &str = "mcp:connect mcp:tools:read mcp:tools:manage";

/// The model written beside the placeholder key (secure-agent's own default).
const SAMPLE_ANTHROPIC_MODEL: &str = "claude-sonnet-4-6";

/// The LLM settings of the sample's agent: a person's own, kept when its file is written again.
const LLM_VARS: [&str; 7] = [
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_MODEL",
    "AWS_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "BEDROCK_MODEL_ID",
];

/// Where the sample's own services run beside the stack: `localhost`, plain http (the sample
/// serves no TLS), each on its own port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleTopology {
    /// The sample's agent0 (`PORT` of `packages/agent0/.env.app`).
    pub agent_port: u16,
    /// The sample's todo0 web app (`PORT` of `packages/todo0/.env.app`).
    pub app_port: u16,
    /// The sample's todo0 MCP server (`MCP_PORT`). Its URL is registered nowhere: the sample's
    /// agent uses the stack's MCP server, and that server's tokens are what this one accepts.
    pub mcp_port: u16,
}

impl SampleTopology {
    /// The sample's agent0 base URL, `http://localhost:3100`.
    pub fn agent(&self) -> String {
        format!("http://localhost:{}", self.agent_port)
    }

    /// The sample's todo0 web app base URL, `http://localhost:5101`.
    pub fn todo_app(&self) -> String {
        format!("http://localhost:{}", self.app_port)
    }
}

/// What [`write_sample_env`] did.
#[derive(Debug, Default)]
pub struct SampleEnv {
    /// The four files, in [`SAMPLE_ENV_FILES`] order (written now, or already up to date).
    pub files: Vec<PathBuf>,
    /// Each file replaced, with the copy of its earlier version.
    pub backups: Vec<(PathBuf, PathBuf)>,
    /// The LLM settings were kept from the `.env.agent` being replaced (otherwise the file holds
    /// the placeholder for the person to fill in).
    pub llm_kept: bool,
}

/// Writes the sample's four env files under `root` (its checkout) for the stack whose idp0 serves
/// `issuer` from the generated configuration in `data_dir`, which must register the sample's
/// redirect URIs (what [`super::ensure`] does with a topology that has `sample`). Every error
/// names the file.
pub fn write_sample_env(
    data_dir: &Path,
    issuer: &str,
    sample: &SampleTopology,
    root: &Path,
) -> anyhow::Result<SampleEnv> {
    let generated = Generated::read(data_dir)?;
    let agent_redirect = format!("{}/callback", sample.agent());
    let todo_redirect = format!("{}/callback", sample.todo_app());
    for (id, uri) in [
        (AGENT0_CLIENT, &agent_redirect),
        (TODO0_CLIENT, &todo_redirect),
    ] {
        if !generated.client(id)?.redirect_uris.contains(uri) {
            bail!(
                "{} does not register {uri} for the client {id}, where the sample's service \
                 sends people back: only a generated configuration (development = true) follows \
                 `up`; add it to that client's redirect_uris",
                data_dir.join(CONFIG_FILE).display()
            );
        }
    }
    let issuer = issuer.trim_end_matches('/');
    let as_issuer = format!("{issuer}/oauth2/{TODO0_SERVER}");
    let okta_domain = okta_domain_for(issuer);
    let resource = &generated.resource;
    let mut out = SampleEnv::default();
    for relative in SAMPLE_ENV_FILES {
        let path = root.join(relative);
        let old = read_existing(&path)?;
        let old_text = old
            .as_deref()
            .map(|b| String::from_utf8_lossy(b).into_owned());
        let header = header(relative, issuer);
        let session_secret =
            || kept_session_secret(old_text.as_deref()).unwrap_or_else(new_hex_secret);
        let contents = match relative {
            "packages/agent0/.env.app" => section(
                &header,
                "Web app: people log in at idp0",
                &[
                    ("PORT", sample.agent_port.to_string()),
                    ("SESSION_SECRET", session_secret()),
                    ("OKTA_DOMAIN", okta_domain.clone()),
                    ("OKTA_CLIENT_ID", AGENT0_CLIENT.to_owned()),
                    ("OKTA_CLIENT_SECRET", generated.secret(AGENT0_CLIENT)?),
                    ("OKTA_REDIRECT_URI", agent_redirect.clone()),
                ],
            ),
            "packages/agent0/.env.agent" => {
                let mut text = section(
                    &header,
                    "MCP client: secure-agent's own todo0 MCP server, the one `up` runs",
                    &[
                        ("MCP_SERVER_URL", resource.clone()),
                        ("MCP_RESOURCE_INDICATOR", resource.clone()),
                    ],
                );
                let kept = kept_llm(old_text.as_deref());
                out.llm_kept = !kept.is_empty();
                text.push_str(&llm_section(&kept));
                text.push_str(&section(
                    "",
                    "Cross-App Access: the agent identity, its key, the todo0 authorization server",
                    &[
                        ("OKTA_DOMAIN", okta_domain.clone()),
                        ("AI_AGENT_ID", AGENT_ID.to_owned()),
                        (
                            "AI_AGENT_PRIVATE_KEY_FILE",
                            generated.key_path.display().to_string(),
                        ),
                        ("AI_AGENT_PRIVATE_KEY_KID", generated.agent_kid.clone()),
                        (
                            "AI_AGENT_TODO_MCP_SERVER_SCOPES_TO_REQUEST",
                            SAMPLE_AGENT_SCOPES.to_owned(),
                        ),
                        ("MCP_AUTHORIZATION_SERVER", as_issuer.clone()),
                        (
                            "MCP_AUTHORIZATION_SERVER_TOKEN_ENDPOINT",
                            format!("{as_issuer}/v1/token"),
                        ),
                    ],
                ));
                text
            }
            "packages/todo0/.env.app" => section(
                &header,
                "Web app: people log in at the todo0 authorization server",
                &[
                    ("PORT", sample.app_port.to_string()),
                    ("SESSION_SECRET", session_secret()),
                    ("OKTA_ISSUER", as_issuer.clone()),
                    ("OKTA_CLIENT_ID", TODO0_CLIENT.to_owned()),
                    ("OKTA_CLIENT_SECRET", generated.secret(TODO0_CLIENT)?),
                    ("OKTA_REDIRECT_URI", todo_redirect.clone()),
                    ("EXPECTED_AUDIENCE", resource.clone()),
                ],
            ),
            _ => section(
                &header,
                "MCP server: it accepts the todo0 authorization server's tokens for the stack's MCP resource",
                &[
                    ("MCP_PORT", sample.mcp_port.to_string()),
                    ("MCP_OKTA_ISSUER", as_issuer.clone()),
                    ("MCP_EXPECTED_AUDIENCE", resource.clone()),
                ],
            ),
        };
        if let Some(backup) = put(&path, old.as_deref(), &contents)? {
            out.backups.push((path.clone(), backup));
        }
        out.files.push(path);
    }
    Ok(out)
}

fn header(relative: &str, issuer: &str) -> String {
    format!(
        "# {relative} of the TypeScript sample, for secure-agent's development stack (idp0 at\n\
         # {issuer}), written by `secure-agent up --sample-env`. Written again at each such start:\n\
         # a version that differs is first kept as .backup; SESSION_SECRET and LLM settings are kept.\n"
    )
}

/// `header`, a blank line, `# title`, and the variables.
fn section(header: &str, title: &str, vars: &[(&str, String)]) -> String {
    let mut out = header.to_owned();
    out.push_str(&format!("\n# {title}\n"));
    for (name, value) in vars {
        out.push_str(&env_line(name, value));
    }
    out
}

/// The LLM settings: the person's own, kept from the file being replaced, or the placeholder.
fn llm_section(kept: &[(String, String)]) -> String {
    if !kept.is_empty() {
        let mut out = String::from("\n# LLM (kept from the file this one replaced)\n");
        for (name, value) in kept {
            out.push_str(&env_line(name, value));
        }
        return out;
    }
    format!(
        "\n# LLM. FILL IN: the sample's agent0 stops at start until one is set. Uncomment the\n\
         # key line and put your own Anthropic key there (or set the AWS Bedrock lines instead).\n\
         # ANTHROPIC_API_KEY=your_anthropic_api_key_here\n\
         ANTHROPIC_MODEL={SAMPLE_ANTHROPIC_MODEL}\n\
         # AWS_REGION=us-east-1\n\
         # AWS_ACCESS_KEY_ID=your_aws_access_key_id_here\n\
         # AWS_SECRET_ACCESS_KEY=your_aws_secret_access_key_here\n\
         # BEDROCK_MODEL_ID=your_bedrock_model_id_here\n"
    )
}

/// The existing file's bytes (backed up exactly as they are), `None` when there is none.
fn read_existing(path: &Path) -> anyhow::Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

fn parsed(old: Option<&str>) -> Vec<(String, String)> {
    old.and_then(|text| crate::dotenv::parse(text).ok())
        .unwrap_or_default()
}

/// The replaced file's `SESSION_SECRET` when it is one this writer makes (≥ 32 bytes of hex), so
/// writing again does not sign everybody out; a weak or template value is replaced.
fn kept_session_secret(old: Option<&str>) -> Option<String> {
    parsed(old).into_iter().find_map(|(name, value)| {
        (name == "SESSION_SECRET"
            && value.len() >= 64
            && value.bytes().all(|b| b.is_ascii_hexdigit()))
        .then_some(value)
    })
}

/// The replaced `.env.agent`'s LLM settings, when it names a credential that is not a template
/// placeholder: the person's own.
fn kept_llm(old: Option<&str>) -> Vec<(String, String)> {
    let vars: Vec<(String, String)> = parsed(old)
        .into_iter()
        .filter(|(name, value)| LLM_VARS.contains(&name.as_str()) && !value.trim().is_empty())
        .collect();
    let credential = vars.iter().any(|(name, value)| {
        matches!(name.as_str(), "ANTHROPIC_API_KEY" | "AWS_ACCESS_KEY_ID") && !is_placeholder(value)
    });
    if credential { vars } else { Vec::new() }
}

fn is_placeholder(value: &str) -> bool {
    let lower = value.trim().to_ascii_lowercase();
    lower.starts_with("your") || lower.ends_with("_here") || lower.contains("placeholder")
}

/// 32 random bytes in hex, as the sample's bootstrap makes `SESSION_SECRET`.
fn new_hex_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes `contents` to `path` (0600, its folder created) unless it already holds them; a
/// different earlier version is first copied to a free `.backup` name, which is returned.
fn put(path: &Path, old: Option<&[u8]>, contents: &str) -> anyhow::Result<Option<PathBuf>> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let backup = match old {
        Some(old) if old == contents.as_bytes() => {
            restrict(path).with_context(|| format!("restricting {} to 0600", path.display()))?;
            return Ok(None);
        }
        Some(old) => Some(back_up(path, old)?),
        None => None,
    };
    write_atomically(path, contents).with_context(|| format!("writing {}", path.display()))?;
    Ok(backup)
}

/// Copies `old` (the bytes of `path`) to the first free `NAME.backup`, `NAME.1.backup`, …, 0600.
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
        match private_options().create_new(true).open(&backup) {
            Ok(mut file) => {
                file.write_all(old)
                    .and_then(|()| file.sync_all())
                    .with_context(|| {
                        format!("backing up {} to {}", path.display(), backup.display())
                    })?;
                return Ok(backup);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("backing up {} to {}", path.display(), backup.display())
                });
            }
        }
    }
    bail!(
        "{} has 1000 backups already: delete old {name}.*.backup files",
        path.display()
    )
}

fn private_options() -> std::fs::OpenOptions {
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

/// Via a temporary file beside it (named after it, so no other file of the folder is touched,
/// and ignored by the sample's `.gitignore` like the backups), created afresh by
/// [`idp0::fsutil::write_atomically`].
fn write_atomically(path: &Path, contents: &str) -> std::io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!("{name}.secure-agent-tmp.backup"));
    idp0::fsutil::write_atomically(path, &tmp, contents.as_bytes(), 0o600)
}

fn restrict(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "sample_tests.rs"]
mod tests;
