//! `secure-agent`: one binary, thin subcommands (ARCHITECTURE §3).

mod agent;
mod bench;
mod github;
mod idp;
mod keys;
mod login;
mod mcp;
mod memory;
mod okta;
mod settings;
mod tls;
mod todo;
mod token;
mod up;
mod web;

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "secure-agent",
    version,
    about = "AI agents that reach a person's apps only through short-lived, scoped, delegated tokens"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Also trust this PEM file's certificate authorities when calling other services (the
    /// system's roots, or SSL_CERT_FILE's, stay trusted). Env: SECURE_AGENT_CA_FILE.
    #[arg(long, global = true, env = "SECURE_AGENT_CA_FILE", value_name = "FILE")]
    ca_file: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Load benchmarks over real HTTP: todo0's MCP server (`bench mcp`) and agent0's chat (`bench agent`).
    Bench {
        #[command(subcommand)]
        command: bench::BenchCommand,
    },
    /// Run the stack in one process: idp0, todo0's MCP server and web app, agent0 (embedded defaults).
    Up(up::UpArgs),
    /// Run agent0, the agent web app (OIDC login, chat, delegated MCP calls).
    Agent(agent::AgentArgs),
    /// Run idp0, the embedded Okta-compatible identity provider.
    Idp(idp::IdpArgs),
    /// Run todo0's MCP server (Streamable HTTP, scope-protected).
    TodoMcp(todo::TodoMcpArgs),
    /// Run todo0's web app and REST API (OIDC login; the MCP server's todos).
    TodoApp(todo::TodoAppArgs),
    /// Run github0, the offline GitHub sandbox (OAuth web flow, REST under /api/v3, MCP at /mcp).
    Github0(github::Github0Args),
    /// Generate key pairs (PEM + public JWK with an RFC 7638 kid).
    Keys {
        #[command(subcommand)]
        command: keys::KeysCommand,
    },
    /// Log in from the shell (OIDC code + PKCE, loopback redirect); tokens cached for `mcp`.
    Login(login::LoginArgs),
    /// Run token exchanges by hand and print the decoded claims.
    Token {
        #[command(subcommand)]
        command: token::TokenCommand,
    },
    /// A client for protected MCP servers: list and call tools with Cross-App Access.
    Mcp {
        #[command(subcommand)]
        command: mcp::McpCommand,
    },
    /// Configure a real Okta org for the stack (bootstrap), check it (validate), remove it (rollback).
    Okta {
        #[command(subcommand)]
        command: okta::OktaCommand,
    },
}

/// Options every service subcommand takes.
#[derive(clap::Args, Clone)]
pub(crate) struct ServiceArgs {
    /// Where keys, configuration and databases live (created 0700).
    #[arg(
        long,
        global = true,
        env = "SECURE_AGENT_DATA_DIR",
        default_value = ".secure-agent"
    )]
    pub(crate) data_dir: PathBuf,
}

fn main() -> std::process::ExitCode {
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    // Benchmarks run the services in-process: their per-request audit lines would be measured
    // too, so only warnings are logged unless RUST_LOG says otherwise.
    let default_filter = match cli.command {
        // The token endpoint's audit lines (grants issued, refusals) are part of its cost.
        Command::Bench {
            command: bench::BenchCommand::Idp(_),
        } => "warn,idp0=info",
        Command::Bench { .. } => "warn",
        _ => "info,sqlx=warn,rmcp=warn",
    };
    // Colours only on a terminal: a log file, a pipe or a journal gets plain text (and
    // NO_COLOR, https://no-color.org, turns them off).
    let colour = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty());
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| default_filter.into()),
        )
        .with_ansi(colour)
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = tls::trust_at_start(cli.ca_file.as_deref(), data_dir(&matches)) {
        eprintln!("error: {e:#}");
        return std::process::ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Bench { command } => bench::run(command).await,
            Command::Up(args) => up::run(args).await,
            Command::Agent(args) => agent::run(args).await,
            Command::Idp(args) => idp::run(args).await,
            Command::TodoMcp(args) => todo::run_mcp(args).await,
            Command::TodoApp(args) => todo::run_app(args).await,
            Command::Github0(args) => github::run(args).await,
            Command::Keys { command } => keys::run(command),
            Command::Login(args) => login::run(args).await,
            Command::Token { command } => token::run(command).await,
            Command::Mcp { command } => mcp::run(command).await,
            Command::Okta { command } => okta::run(command).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The `--data-dir` of the (innermost) subcommand that has one.
fn data_dir(matches: &clap::ArgMatches) -> Option<&std::path::Path> {
    let (_, sub) = matches.subcommand()?;
    data_dir(sub).or_else(|| {
        sub.try_get_one::<PathBuf>("data_dir")
            .ok()
            .flatten()
            .map(PathBuf::as_path)
    })
}

/// Resolves on Ctrl-C or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
