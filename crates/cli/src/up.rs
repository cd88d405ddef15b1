//! `secure-agent up`: the stack in one process on embedded defaults (ARCHITECTURE §3) — idp0,
//! todo0's MCP server, todo0's web app, agent0 and github0 (the offline GitHub sandbox, always
//! plain http, reached by agent0 through idp0's brokered consent), sharing one data directory. Each service is
//! started exactly as its own subcommand would start it, so `up` has no configuration path of
//! its own.
//!
//! With `--database postgres://…` every service keeps its state in that one database instead of
//! SQLite files in the data directory, each in its own schema (`idp0`, `todo0`, `agent0`), so
//! their tables and migration histories never collide.

use std::time::Duration;

use anyhow::Context;
use clap::Parser;

use crate::ServiceArgs;

mod sample;

#[derive(clap::Args)]
pub(crate) struct UpArgs {
    #[command(flatten)]
    service: ServiceArgs,
    /// Also write the TypeScript sample's own env files for this stack into its checkout DIR
    /// (packages/agent0/.env.app and .env.agent, packages/todo0/.env.app and .env.mcp), for its
    /// services beside ours on our ports + 100 (3100, 5101, 5102; with port 0, free ones).
    #[arg(long, value_name = "DIR")]
    sample_env: Option<std::path::PathBuf>,
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
    /// github0's port (the offline GitHub sandbox).
    #[arg(long, default_value_t = crate::github::DEFAULT_PORT)]
    github_port: u16,
    /// One PostgreSQL database for every service's state, instead of SQLite files in the data
    /// directory: `postgres://USER:PASSWORD@HOST:5432/DATABASE[?sslmode=require]`. idp0, todo0
    /// (MCP server and web app) and agent0 each keep their tables in their own schema (`idp0`,
    /// `todo0`, `agent0`), created at first start. Checked before anything is served.
    #[arg(
        long,
        value_name = "URL",
        env = "SECURE_AGENT_DATABASE_URL",
        hide_env_values = true
    )]
    database: Option<String>,
    /// Keep agent0's sessions, token cache and exchange locks in Redis
    /// (`redis://[:PASSWORD@]HOST:6379[/DB]`, `rediss://` for TLS) instead of in process, as
    /// `agent --redis` does. Checked before anything is served.
    #[arg(
        long,
        value_name = "URL",
        env = "SECURE_AGENT_REDIS_URL",
        hide_env_values = true
    )]
    redis: Option<String>,
    /// Every service serves https (see each service's --tls); plain http stays the default.
    #[command(flatten)]
    tls: crate::tls::ServeTls,
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

/// Binds one service's port, or says which service could not have it and what to do.
async fn listen(service: &str, port: u16, flag: &str) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| {
            format!(
                "{service} cannot listen on 127.0.0.1:{port}: is another secure-agent (or another \
                 program) using that port? Stop it, or choose another port with {flag} PORT"
            )
        })
}

/// Refuses a database `up` cannot use, before any port is bound: not a PostgreSQL URL, or a
/// server that does not answer (the URL shown without its password, and the fix).
async fn check_database(url: &str) -> anyhow::Result<()> {
    let shown = dbconn::redact_url(url);
    if !dbconn::is_postgres_url(url) {
        anyhow::bail!(
            "--database {shown} is not a PostgreSQL URL: `up --database` takes \
             postgres://USER:PASSWORD@HOST:5432/DATABASE (without it, each service keeps a SQLite \
             file in the data directory)"
        );
    }
    let options = dbconn::parse(url)?;
    match dbconn::check(&options).await {
        Ok(()) => Ok(()),
        Err(e) => anyhow::bail!(
            "cannot connect to the PostgreSQL database {shown} ({e}). Fix: start the server or \
             check the host, port, user, password, database name and sslmode in --database / \
             SECURE_AGENT_DATABASE_URL"
        ),
    }
}

pub(crate) async fn run(args: UpArgs) -> anyhow::Result<()> {
    if let Some(url) = &args.database {
        check_database(url).await?;
    }
    if let Some(url) = &args.redis {
        // Connecting is the check (agent0 connects again when it starts).
        agent0::shared::SharedState::redis(
            url,
            agent0::shared::redis::DEFAULT_PREFIX,
            protocol::clock::system(),
        )
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "{e}; start Redis there, or point --redis / SECURE_AGENT_REDIS_URL at one that \
                 answers (or leave both unset to keep agent0's sessions in process)"
            )
        })?;
    }
    // Every port is bound before anything is configured: with port 0 the real ports are only
    // known now, and every URL in the generated configuration (redirect and logout URIs, the MCP
    // resource, the env files, the banners) must name the ports actually served.
    let idp_listener = listen("idp0", args.idp_port, "--idp-port").await?;
    let mcp_listener = listen("todo0's MCP server", args.mcp_port, "--mcp-port").await?;
    let app_listener = listen("todo0's web app", args.app_port, "--app-port").await?;
    let agent_listener = listen("agent0", args.agent_port, "--agent-port").await?;
    let github_listener = listen("github0", args.github_port, "--github-port").await?;
    let port = |l: &tokio::net::TcpListener| l.local_addr().map(|a| a.port());
    let (idp_port, mcp_port, app_port, agent_port) = (
        port(&idp_listener)?,
        port(&mcp_listener)?,
        port(&app_listener)?,
        port(&agent_listener)?,
    );
    let scheme = args.tls.scheme();
    let github_port = port(&github_listener)?;
    let topology = devstack::Topology::on_localhost(scheme, agent_port, app_port, mcp_port)
        .with_github_port(github_port);
    let (topology, beside) =
        sample::beside(topology, &args, [agent_port, app_port, mcp_port, idp_port])?;
    // The CA is made (or renewed) once here, before the services start side by side.
    idp0::fsutil::create_private_dir(&args.service.data_dir)?;
    let local_ca = args.tls.prepare(&args.service.data_dir)?;

    let dir = args.service.data_dir.display().to_string();
    let tls_args = args.tls.to_args();
    let with = |name: &str, port: u16| {
        let mut service = vec![
            name.to_owned(),
            "--data-dir".into(),
            dir.clone(),
            "--port".into(),
            port.to_string(),
        ];
        service.extend(tls_args.iter().cloned());
        // Every service on the one database (its own schema in it), as its own subcommand's
        // --database would put it.
        if let Some(url) = &args.database {
            service.extend(["--database".into(), url.clone()]);
        }
        service
    };
    let idp_args: crate::idp::IdpArgs = service_args(&with("idp", idp_port))?;
    // Each service stops when its channel fires (or its sender is dropped): `up` stops them in
    // order, agent0 first so it can end its MCP sessions while todo0 still listens, idp0 last.
    let (stop_idp, idp_stop) = tokio::sync::oneshot::channel::<()>();
    let (stop_mcp, mcp_stop) = tokio::sync::oneshot::channel::<()>();
    let (stop_app, app_stop) = tokio::sync::oneshot::channel::<()>();
    let (stop_agent, agent_stop) = tokio::sync::oneshot::channel::<()>();
    let (stop_github, github_stop) = tokio::sync::oneshot::channel::<()>();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let idp = tokio::spawn(crate::idp::run_in_stack(
        idp_args,
        crate::idp::Stack {
            listener: Some(idp_listener),
            topology: Some(topology),
            ready: Some(ready_tx),
            shutdown: Some(Box::pin(stopped(idp_stop))),
        },
    ));
    let issuer = match tokio::time::timeout(Duration::from_secs(30), ready_rx).await {
        Ok(Ok(issuer)) => issuer,
        // idp0 stopped before it was ready: its own error says why.
        Ok(Err(_)) => {
            return Err(joined(idp)
                .await
                .err()
                .unwrap_or_else(|| anyhow::anyhow!("idp0 stopped before it was ready")));
        }
        Err(_) => anyhow::bail!("idp0 did not start within 30 s"),
    };
    if let Some(beside) = &beside {
        sample::write(&args, beside, &issuer, local_ca.as_deref())?;
    }
    // The other services read the env files idp0 has just written for this topology; the issuer
    // is passed too, since `--idp-port` moves it.
    let todo_issuer = format!("{issuer}/oauth2/{}", devstack::TODO0_SERVER);
    let mut mcp_args = with("todo-mcp", mcp_port);
    mcp_args.extend(["--issuer".into(), todo_issuer.clone()]);
    let mut app_args = with("todo-app", app_port);
    app_args.extend([
        "--issuer".into(),
        todo_issuer,
        "--okta-domain".into(),
        issuer.clone(),
    ]);
    let mut agent_args = with("agent", agent_port);
    agent_args.extend(["--okta-domain".into(), issuer]);
    if let Some(url) = &args.redis {
        agent_args.extend(["--redis".into(), url.clone()]);
    }
    let mut mcp = tokio::spawn(crate::todo::run_mcp_on(
        service_args(&mcp_args)?,
        Some(mcp_listener),
        stopped(mcp_stop),
    ));
    let mut app = tokio::spawn(crate::todo::run_app_on(
        service_args(&app_args)?,
        Some(app_listener),
        stopped(app_stop),
    ));
    let mut agent = tokio::spawn(crate::agent::run_on(
        service_args(&agent_args)?,
        Some(agent_listener),
        stopped(agent_stop),
    ));
    // github0 reads the github0.toml idp0 has just written (idp0's OAuth app there, with its
    // callback at this issuer) and the demo users' file.
    let github_args = [
        "github0".to_owned(),
        "--data-dir".into(),
        dir.clone(),
        "--port".into(),
        github_port.to_string(),
    ];
    let mut github = tokio::spawn(crate::github::run_on(
        service_args(&github_args)?,
        Some(github_listener),
        stopped(github_stop),
    ));
    let mut idp = idp;
    tokio::spawn(announce_when_ready(
        scheme,
        [idp_port, mcp_port, app_port, agent_port],
        github_port,
        local_ca.map(|ca| crate::tls::trust_hint(&ca)),
    ));
    // Until Ctrl-C / SIGTERM, a service that stops is a failure, and it stops `up` (returning
    // drops the other channels, which stops the rest).
    let early = tokio::select! {
        () = crate::shutdown_signal() => None,
        ended = &mut agent => Some(("agent0", ended)),
        ended = &mut mcp => Some(("todo0's MCP server", ended)),
        ended = &mut app => Some(("todo0's web app", ended)),
        ended = &mut github => Some(("github0", ended)),
        ended = &mut idp => Some(("idp0", ended)),
    };
    if let Some((service, ended)) = early {
        ended.context("a service task panicked")??;
        anyhow::bail!("{service} stopped unexpectedly");
    }
    let _ = stop_agent.send(());
    let agent = joined(agent).await;
    let _ = (stop_mcp.send(()), stop_app.send(()), stop_github.send(()));
    let (mcp, app, github) = tokio::join!(joined(mcp), joined(app), joined(github));
    let _ = stop_idp.send(());
    let idp = joined(idp).await;
    agent.and(mcp).and(app).and(github).and(idp)
}

/// Resolves when `stop` fires or its sender is gone.
async fn stopped(stop: tokio::sync::oneshot::Receiver<()>) {
    let _ = stop.await;
}

async fn joined(task: tokio::task::JoinHandle<anyhow::Result<()>>) -> anyhow::Result<()> {
    task.await.context("a service task panicked")?
}

/// Prints where to start once every service answers its health check (after their own banners),
/// and with `--tls`, how to make other tools and browsers trust the local CA.
async fn announce_when_ready(
    scheme: &str,
    ports: [u16; 4],
    github_port: u16,
    trust_hint: Option<String>,
) {
    let agent_port = ports[3];
    let Ok(http) = protocol::trust::client_builder()
        .timeout(Duration::from_secs(2))
        .build()
    else {
        return;
    };
    for _ in 0..600 {
        let mut ready = true;
        let github = format!("http://localhost:{github_port}");
        let healths = ports
            .iter()
            .map(|port| format!("{scheme}://localhost:{port}/health"))
            .chain([format!("{github}/health")]);
        for health in healths {
            ready &= http
                .get(&health)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
        }
        if ready {
            if let Some(hint) = &trust_hint {
                println!("\n{hint}");
            }
            println!(
                "\ngithub0 (the offline GitHub sandbox) is at {github}/ for the same demo logins"
            );
            println!(
                "\nsecure-agent is up: open {scheme}://localhost:{agent_port}/ and log in with a demo \
                 login above (Ctrl-C stops everything)"
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
