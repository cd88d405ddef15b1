//! `up --sample-env DIR`: the TypeScript sample's own services beside the stack. Their ports are
//! chosen with the stack's (so idp0's generated configuration registers their redirect and logout
//! URIs from the start), and once idp0 is ready their four env files are written into the sample's
//! checkout ([`devstack::write_sample_env`]), with how to start them.

use std::path::Path;

use anyhow::{Context, anyhow, bail};
use devstack::{SampleTopology, Topology};

use super::UpArgs;

/// How far above the stack's own ports the sample's services listen (3100, 5101, 5102).
const PORT_OFFSET: u16 = 100;

/// `topology` with the sample's services beside it when `--sample-env` is given. `ours` are the
/// ports the stack holds (agent0, todo0's web app, todo0's MCP server, idp0). Each sample service
/// listens 100 above its counterpart; where `up` was given port 0 (any port), on a port the OS
/// names free now instead. A port no service could use, or one the stack holds, is refused.
pub(super) fn beside(
    mut topology: Topology,
    args: &UpArgs,
    ours: [u16; 4],
) -> anyhow::Result<(Topology, Option<SampleTopology>)> {
    if args.sample_env.is_none() {
        return Ok((topology, None));
    }
    let services = [
        ("agent0", "--agent-port", args.agent_port),
        ("todo0's web app", "--app-port", args.app_port),
        ("todo0's MCP server", "--mcp-port", args.mcp_port),
    ];
    let mut ports = [0_u16; 3];
    for (i, (service, flag, requested)) in services.into_iter().enumerate() {
        ports[i] = if requested == 0 {
            free_port()
                .with_context(|| format!("finding a free port for the sample's {service}"))?
        } else {
            ours[i].checked_add(PORT_OFFSET).ok_or_else(|| {
                anyhow!(
                    "--sample-env puts the sample's {service} {PORT_OFFSET} ports above ours, and \
                     {flag} {} leaves no room: choose a lower {flag}, or 0 for any",
                    ours[i]
                )
            })?
        };
    }
    let names = ["agent0", "todo0's web app", "todo0's MCP server", "idp0"];
    for (i, port) in ports.into_iter().enumerate() {
        let taken = ours
            .iter()
            .position(|p| *p == port)
            .map(|at| names[at].to_owned())
            .or_else(|| {
                let at = ports[..i].iter().position(|p| *p == port)?;
                Some(format!("the sample's {}", names[at]))
            });
        if let Some(owner) = taken {
            bail!(
                "--sample-env would put the sample's {} on port {port}, which {owner} uses here: \
                 choose ports further apart (each sample service takes ours + {PORT_OFFSET})",
                names[i]
            );
        }
    }
    let sample = SampleTopology {
        agent_port: ports[0],
        app_port: ports[1],
        mcp_port: ports[2],
    };
    topology.sample = Some(sample.clone());
    Ok((topology, Some(sample)))
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind(("127.0.0.1", 0))?
        .local_addr()?
        .port())
}

/// Writes the sample's env files for the stack idp0 now serves at `issuer` and says where they
/// went and how to start the sample's services.
/// `ca` is the local CA of `--tls`.
pub(super) fn write(
    args: &UpArgs,
    sample: &SampleTopology,
    issuer: &str,
    ca: Option<&Path>,
) -> anyhow::Result<()> {
    let Some(root) = &args.sample_env else {
        return Ok(());
    };
    let data_dir = &args.service.data_dir;
    let written = devstack::write_sample_env(data_dir, issuer, sample, root)?;
    let given = root;
    let root = std::fs::canonicalize(root).unwrap_or_else(|_| root.clone());
    println!(
        "The TypeScript sample's env files for this stack are in {} (its agent0 will listen on \
         http://localhost:{}, its todo0 on http://localhost:{}, its MCP server on port {}; its \
         agent0 uses this stack's MCP server):",
        root.display(),
        sample.agent_port,
        sample.app_port,
        sample.mcp_port
    );
    for file in &written.files {
        let shown = file.strip_prefix(given).unwrap_or(file);
        match written.backups.iter().find(|(f, _)| f == file) {
            Some((_, backup)) => println!(
                "  {} (its earlier version: {})",
                shown.display(),
                backup.file_name().unwrap_or_default().to_string_lossy()
            ),
            None => println!("  {}", shown.display()),
        }
    }
    if !root.join("package.json").exists() {
        println!("  (there is no package.json there: is it the sample's checkout?)");
    }
    if !written.llm_kept {
        println!(
            "  Fill in an LLM key in packages/agent0/.env.agent (the lines marked FILL IN): the \
             sample's agent0 stops at start without one."
        );
    }
    // `up`'s todo0 reads its policy from the environment (the generated todo0.env has none).
    if std::env::var("TODO_SCOPE_POLICY").ok().as_deref() != Some("sample-compatible") {
        println!(
            "  Note: this stack's todo0 wants mcp:tools:delete for deleting, a scope the sample's \
             agent never asks for: start with TODO_SCOPE_POLICY=sample-compatible for its deletes \
             to work."
        );
    }
    if issuer.starts_with("https://") {
        let ca = ca.map_or_else(
            || "<the CA file of your --tls-cert>".to_owned(),
            |ca| shell_word(&std::fs::canonicalize(ca).unwrap_or_else(|_| ca.to_owned())),
        );
        println!(
            "  Start the sample's services there (the first time: pnpm install && pnpm run \
             init:prisma && pnpm run build):\n    cd {} && NODE_EXTRA_CA_CERTS={} pnpm run \
             start:all",
            shell_word(&root),
            ca
        );
    } else {
        println!(
            "  Note: this stack serves plain http, but the sample's agent0 and MCP server reach \
             the IdP only at https://OKTA_DOMAIN: start it with `secure-agent up --tls \
             --sample-env {}` to run the sample against it.",
            shell_word(&root)
        );
    }
    Ok(())
}

/// A path as one shell word (quoted when it needs to be).
fn shell_word(path: &Path) -> String {
    let text = path.display().to_string();
    if text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+:@%".contains(c))
    {
        text
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}
