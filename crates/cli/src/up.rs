//! `secure-agent up`: the stack in one process on embedded defaults (ARCHITECTURE §3) — idp0,
//! todo0's MCP server, todo0's web app and agent0, sharing one data directory. Each service is
//! started exactly as its own subcommand would start it, so `up` has no configuration path of
//! its own.

use std::time::Duration;

use anyhow::Context;
use clap::Parser;

use crate::ServiceArgs;

#[derive(clap::Args)]
pub(crate) struct UpArgs {
    #[command(flatten)]
    service: ServiceArgs,
    /// idp0's port.
    #[arg(long, default_value_t = 9400)]
    idp_port: u16,
    /// todo0 MCP server's port.
    #[arg(long, default_value_t = 5002)]
    mcp_port: u16,
    /// todo0 web app's port.
    #[arg(long, default_value_t = 5001)]
    app_port: u16,
    /// agent0's port.
    #[arg(long, default_value_t = 3000)]
    agent_port: u16,
}

/// Parses a service's own arguments, so `up` starts it exactly as its subcommand would.
#[derive(Parser)]
struct Service<T: clap::Args> {
    #[command(flatten)]
    args: T,
}

fn service_args<T: clap::Args>(args: &[String]) -> anyhow::Result<T> {
    Ok(Service::<T>::try_parse_from(args)?.args)
}

pub(crate) async fn run(args: UpArgs) -> anyhow::Result<()> {
    let dir = args.service.data_dir.display().to_string();
    let with = |name: &str, port: u16| {
        vec![
            name.to_owned(),
            "--data-dir".into(),
            dir.clone(),
            "--port".into(),
            port.to_string(),
        ]
    };
    let idp_args: crate::idp::IdpArgs = service_args(&with("idp", args.idp_port))?;
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let idp = tokio::spawn(crate::idp::run_until_ready(idp_args, ready_tx));
    let issuer = tokio::time::timeout(Duration::from_secs(30), ready_rx)
        .await
        .context("idp0 did not start within 30 s")?
        .context("idp0 failed to start")?;
    // The todo services discover idp0; with a port of 0 the generated settings name the
    // default port, so point them at the issuer that actually runs.
    let todo_issuer = format!("{issuer}/oauth2/{}", idp0::devconfig::TODO0_SERVER);
    let mut mcp_args = with("todo-mcp", args.mcp_port);
    mcp_args.extend(["--issuer".into(), todo_issuer.clone()]);
    let mut app_args = with("todo-app", args.app_port);
    app_args.extend([
        "--issuer".into(),
        todo_issuer,
        "--okta-domain".into(),
        issuer.clone(),
    ]);
    let mut agent_args = with("agent", args.agent_port);
    agent_args.extend(["--okta-domain".into(), issuer]);
    let mcp = tokio::spawn(crate::todo::run_mcp(service_args(&mcp_args)?));
    let app = tokio::spawn(crate::todo::run_app(service_args(&app_args)?));
    let agent = tokio::spawn(crate::agent::run(service_args(&agent_args)?));
    if args.agent_port != 0 {
        tokio::spawn(announce_when_ready(args.agent_port));
    }
    // The first service to fail stops `up` (and with it the others).
    let joined = |task: tokio::task::JoinHandle<anyhow::Result<()>>| async move {
        task.await.context("a service task panicked")?
    };
    tokio::try_join!(joined(idp), joined(mcp), joined(app), joined(agent))?;
    Ok(())
}

/// Prints where to start once agent0 answers (after every service's own banner).
async fn announce_when_ready(port: u16) {
    let health = format!("http://127.0.0.1:{port}/health");
    let http = reqwest::Client::new();
    for _ in 0..300 {
        if http
            .get(&health)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            println!(
                "\nsecure-agent is up: open http://localhost:{port}/ and log in with a demo login \
                 above (Ctrl-C stops everything)"
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
