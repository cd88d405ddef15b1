//! `secure-agent idp`: serve idp0; `idp rotate-keys`; `idp hash-password`.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::ServiceArgs;

#[derive(Args)]
pub(crate) struct IdpArgs {
    #[command(subcommand)]
    command: Option<IdpCommand>,
    #[command(flatten)]
    service: ServiceArgs,
    /// Port to listen on (0 picks a free one).
    #[arg(long, env = "IDP_PORT", default_value_t = 9400)]
    port: u16,
    /// Address to bind.
    #[arg(long, env = "IDP_BIND", default_value = "127.0.0.1")]
    bind: String,
    /// Public base URL (org issuer). Defaults to http://localhost:<port>.
    #[arg(long, env = "IDP_ISSUER")]
    issuer: Option<String>,
    /// TOML configuration; without it a development configuration is generated in the data dir.
    #[arg(long, env = "IDP_CONFIG")]
    config: Option<PathBuf>,
    /// Where idp0 keeps its state: `postgres://USER:PASSWORD@HOST:5432/DB[?sslmode=require]`
    /// (replicas share it, and the data dir's keys), or `sqlite://PATH`. Default:
    /// <data-dir>/idp0.db. `up` may set it directly.
    #[arg(long, env = "IDP_DATABASE_URL", hide_env_values = true)]
    pub(crate) database: Option<String>,
    #[command(flatten)]
    tls: crate::tls::ServeTls,
}

#[derive(Subcommand)]
enum IdpCommand {
    /// Rotate an authorization server's signing keys (next becomes current; the old one stays published).
    RotateKeys {
        /// `org` or a custom authorization server id.
        #[arg(long, default_value = "org")]
        server: String,
    },
    /// Print the Argon2id hash of a password read from standard input, for `users[].password_hash`.
    HashPassword,
}

pub(crate) async fn run(args: IdpArgs) -> anyhow::Result<()> {
    match args.command {
        Some(IdpCommand::RotateKeys { server }) => {
            let dir_name = if server == "org" {
                "org".to_owned()
            } else {
                format!("as-{server}")
            };
            let dir = args.service.data_dir.join("keys").join(dir_name);
            anyhow::ensure!(
                dir.join("current.pem").exists(),
                "no keys for server {server:?} in {}",
                dir.display()
            );
            let kid = idp0::keyring::KeyRing::rotate(&dir)?;
            println!("rotated {server}: now signing with kid {kid}; restart idp0 to apply");
            Ok(())
        }
        Some(IdpCommand::HashPassword) => {
            let mut password = String::new();
            std::io::stdin().read_line(&mut password)?;
            let hash = idp0::password::hash(password.trim_end_matches(['\r', '\n']))
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("{hash}");
            Ok(())
        }
        None => serve(args, Stack::default()).await,
    }
}

/// What `up` hands idp0: the port it already bound, where the other services run, a channel on
/// which idp0 reports its issuer once it listens, and when to stop (default: Ctrl-C / SIGTERM).
#[derive(Default)]
pub(crate) struct Stack {
    pub(crate) listener: Option<tokio::net::TcpListener>,
    pub(crate) topology: Option<devstack::Topology>,
    pub(crate) ready: Option<tokio::sync::oneshot::Sender<String>>,
    pub(crate) shutdown: Option<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>>,
}

/// Serves idp0 as part of the whole stack (for `up`).
pub(crate) async fn run_in_stack(args: IdpArgs, stack: Stack) -> anyhow::Result<()> {
    serve(args, stack).await
}

async fn serve(args: IdpArgs, stack: Stack) -> anyhow::Result<()> {
    let Stack {
        listener,
        topology,
        ready,
        shutdown,
    } = stack;
    let shutdown = shutdown.unwrap_or_else(|| Box::pin(crate::shutdown_signal()));
    let scheme = args.tls.scheme();
    let issuer_for = |port: u16| {
        args.issuer
            .clone()
            .unwrap_or_else(|| format!("{scheme}://localhost:{port}"))
    };
    // Started on its own, idp0 does not know the other services' ports, but a generated
    // configuration follows the scheme it serves (its clients' URLs switch with `--tls`).
    let topology = topology.or_else(|| {
        args.config.is_none().then(|| {
            devstack::configured_topology(&args.service.data_dir, scheme)
                .unwrap_or_else(|| devstack::Topology::on_localhost(scheme, 3000, 5001, 5002))
        })
    });
    let local_ca = args.tls.prepare(&args.service.data_dir)?;
    // The store is opened (and migrated) first, so an unusable database stops idp0 before it
    // binds; with a fixed port the configuration is loaded before binding too, so a bad config
    // never holds a port. With `--port 0` the issuer needs the bound port first.
    let dev = match &args.config {
        Some(_) => None,
        None => Some(devstack::ensure(&args.service.data_dir, topology.as_ref())?),
    };
    let store = idp0::open_store(&options(&args, String::new(), dev.as_ref())?).await?;
    let (listener, opened) = match listener {
        Some(listener) => {
            let issuer = issuer_for(listener.local_addr()?.port());
            (listener, open(&args, issuer, dev.as_ref(), store).await?)
        }
        None if args.port == 0 => {
            let listener = bind(&args.bind, 0).await?;
            let issuer = issuer_for(listener.local_addr()?.port());
            (listener, open(&args, issuer, dev.as_ref(), store).await?)
        }
        None => {
            let opened = open(&args, issuer_for(args.port), dev.as_ref(), store).await?;
            (bind(&args.bind, args.port).await?, opened)
        }
    };
    let listener = args.tls.listener(&args.service.data_dir, listener)?;
    let idp = opened;
    if dev.is_some() {
        devstack::write_env_files(&args.service.data_dir, idp.issuer())?;
    }
    let (demo_users, generated) = dev.map_or((Vec::new(), false), |d| (d.demo_users, d.created));
    println!("idp0 is running");
    println!("  org issuer:        {}", idp.issuer());
    let mut servers: Vec<_> = idp
        .directory()
        .servers
        .values()
        .map(|s| s.issuer.clone())
        .collect();
    servers.sort();
    for issuer in servers {
        println!("  custom AS:         {issuer}");
    }
    println!("  listening on:      {}", listener.local_addr()?);
    println!(
        "  management API:    {}/api/v1/… with `Authorization: SSWS <the token in {}>`",
        idp.issuer(),
        args.service
            .data_dir
            .join(idp0::admin::TOKEN_FILE)
            .display()
    );
    if !demo_users.is_empty() {
        let note = if generated { " (generated now)" } else { "" };
        println!("  demo logins{note}:");
        for (user, password) in &demo_users {
            println!("    {user} / {password}");
        }
        println!(
            "  settings for agent0 and todo0: {}/{{agent0,todo0}}.env",
            args.service.data_dir.display()
        );
    }
    if let Some(ca) = local_ca.filter(|_| ready.is_none()) {
        println!("{}", crate::tls::trust_hint(&ca));
    }
    if let Some(ready) = ready {
        let _ = ready.send(idp.issuer().to_owned());
    }
    idp0::serve(listener, idp, shutdown).await?;
    println!("idp0 stopped");
    Ok(())
}

/// idp0's options: the `--config` file, or the development configuration `dev` (with its demo
/// logins shown).
fn options(
    args: &IdpArgs,
    issuer: String,
    dev: Option<&devstack::DevConfig>,
) -> anyhow::Result<idp0::Options> {
    let config = match (dev, &args.config) {
        (Some(dev), _) => dev.path.clone(),
        (None, Some(path)) => path.clone(),
        (None, None) => anyhow::bail!("idp0 needs --config or the development configuration"),
    };
    Ok(idp0::Options {
        data_dir: args.service.data_dir.clone(),
        config,
        database: args.database.clone(),
        issuer,
        clock: protocol::clock::system(),
        demo_credentials: dev.map(|d| d.demo_users.clone()).unwrap_or_default(),
    })
}

async fn open(
    args: &IdpArgs,
    issuer: String,
    dev: Option<&devstack::DevConfig>,
    store: std::sync::Arc<dyn idp0::store::Store>,
) -> anyhow::Result<idp0::Idp> {
    let parsed =
        url::Url::parse(&issuer).with_context(|| format!("--issuer {issuer:?} is not a URL"))?;
    crate::tls::check_public_url(&args.tls, &parsed, "--issuer")?;
    idp0::open_with_store(options(args, issuer, dev)?, store).await
}

async fn bind(address: &str, port: u16) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind((address, port))
        .await
        .with_context(|| {
            format!("cannot listen on {address}:{port} (is another idp0 running? use --port)")
        })
}
