//! `secure-agent token exchange`: both Cross-App Access steps by hand (ARCHITECTURE §5.3) with a
//! given ID token (default: the one `secure-agent login` cached for the issuer) and the agent's key, printing the decoded ID-JAG and access-token claims.
//! With `--sts`, the brokered ("OAuth STS") exchange instead (OKTA.md §1): the ISV token's type,
//! scope and expiry, or the consent link to open (and a non-zero exit).
//! Raw tokens are printed only with `--raw`.

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Subcommand;
use protocol::assertion::ClientAssertionSigner;
use protocol::oauth::{ErrorCode, TokenType};
use protocol::token_client::{
    ClientAuth, CrossAppAccess, IdJagRequest, TokenClient, TokenClientError,
};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use crate::ServiceArgs;
use crate::settings::Settings;

#[derive(Subcommand)]
pub(crate) enum TokenCommand {
    /// ID token → ID-JAG (org AS token exchange) → access token (resource AS JWT bearer).
    Exchange(ExchangeArgs),
}

#[derive(clap::Args)]
pub(crate) struct ExchangeArgs {
    #[command(flatten)]
    service: ServiceArgs,
    /// The user's ID token; `-` reads it from standard input. Env: ID_TOKEN. Default: the one
    /// `secure-agent login` cached for the issuer.
    #[arg(long)]
    id_token: Option<String>,
    /// dotenv files with the sample's variable names (repeatable). Default: <data-dir>/agent0.env.
    #[arg(long = "env-file")]
    env_files: Vec<PathBuf>,
    /// Org issuer. Env: OKTA_DOMAIN.
    #[arg(long)]
    issuer: Option<String>,
    /// The agent's client id. Env: AI_AGENT_ID.
    #[arg(long)]
    agent_id: Option<String>,
    /// The agent's private key (PEM). Env: AI_AGENT_PRIVATE_KEY_FILE.
    #[arg(long)]
    key: Option<PathBuf>,
    /// The key's kid. Env: AI_AGENT_PRIVATE_KEY_KID.
    #[arg(long)]
    kid: Option<String>,
    /// The resource authorization server's issuer. Env: MCP_AUTHORIZATION_SERVER.
    #[arg(long)]
    audience: Option<String>,
    /// The resource identifier. Env: MCP_RESOURCE_INDICATOR.
    #[arg(long)]
    resource: Option<String>,
    /// Space-separated scopes. Env: AI_AGENT_TODO_MCP_SERVER_SCOPES_TO_REQUEST.
    #[arg(long)]
    scope: Option<String>,
    /// Also print the raw tokens (they are bearer credentials: handle with care).
    #[arg(long)]
    raw: bool,
    /// The brokered exchange (`requested_token_type=urn:okta:params:oauth:token-type:oauth-sts`)
    /// for `--resource` (a managed connection's resource indicator; env: OAUTH_STS_RESOURCE).
    #[arg(long)]
    sts: bool,
}

pub(crate) async fn run(command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::Exchange(args) => exchange(args).await,
    }
}

async fn exchange(args: ExchangeArgs) -> anyhow::Result<()> {
    let settings = Settings::load(
        &args.env_files,
        &args.service.data_dir,
        devstack::AGENT0_ENV,
    )?;
    let domain = settings.require(args.issuer.as_deref(), "--issuer", "OKTA_DOMAIN")?;
    let issuer = devstack::issuer_from_okta_domain(&domain);
    let id_token = match settings.get(args.id_token.as_deref(), "ID_TOKEN") {
        Some(token) if token == "-" => {
            let mut token = String::new();
            std::io::stdin().read_to_string(&mut token)?;
            SecretString::from(token.trim().to_owned())
        }
        Some(token) => SecretString::from(token),
        // `secure-agent login`'s cached ID token, refreshed if it has expired.
        None => crate::login::cached_id_token(&args.service.data_dir, &issuer).await?,
    };
    let agent_id = settings.require(args.agent_id.as_deref(), "--agent-id", "AI_AGENT_ID")?;
    let key = settings.require_agent_key(args.key.as_deref(), args.kid.as_deref())?;
    if args.sts {
        let resource =
            settings.require(args.resource.as_deref(), "--resource", "OAUTH_STS_RESOURCE")?;
        let auth = ClientAuth::PrivateKeyJwt(ClientAssertionSigner::new(
            agent_id,
            Arc::new(key),
            protocol::clock::system(),
        ));
        return brokered(&issuer, &auth, &id_token, &resource, args.raw).await;
    }
    let audience = settings.require(
        args.audience.as_deref(),
        "--audience",
        "MCP_AUTHORIZATION_SERVER",
    )?;
    let resource = settings.get(args.resource.as_deref(), "MCP_RESOURCE_INDICATOR");
    let scope = settings.get(
        args.scope.as_deref(),
        "AI_AGENT_TODO_MCP_SERVER_SCOPES_TO_REQUEST",
    );

    let auth = ClientAuth::PrivateKeyJwt(ClientAssertionSigner::new(
        agent_id,
        Arc::new(key),
        protocol::clock::system(),
    ));

    let http = protocol::discovery::http_client().context("building the HTTP client")?;
    let org = protocol::discovery::discover(&http, &issuer)
        .await
        .context("discovering the org authorization server")?;
    let org_token = org
        .token_endpoint
        .context("the org authorization server has no token_endpoint")?;
    let resource_as = protocol::discovery::discover(&http, &audience)
        .await
        .context("discovering the resource authorization server")?;
    let as_token = match settings.get(None, "MCP_AUTHORIZATION_SERVER_TOKEN_ENDPOINT") {
        Some(endpoint) => endpoint,
        None => resource_as
            .token_endpoint
            .context("the resource authorization server has no token_endpoint")?,
    };

    let exchange = CrossAppAccess {
        org_token_endpoint: &org_token,
        resource_token_endpoint: &as_token,
        request: IdJagRequest {
            subject_token: &id_token,
            subject_token_type: TokenType::IdToken,
            audience: &audience,
            resource: resource.as_deref(),
            scope: scope.as_deref(),
        },
    };
    let grant = TokenClient::new()?
        .exchange_for_access_token(&auth, &exchange)
        .await?;
    let (jag, access) = (&grant.id_jag, &grant.access);

    let decode = |token: &SecretString| {
        protocol::verify::decode_unverified(token.expose_secret()).unwrap_or_default()
    };
    let mut out = json!({
        "id_jag": {
            "token_endpoint": org_token,
            "expires_in": jag.expires_in,
            "scope": jag.scope,
            "claims": decode(&jag.access_token),
        },
        "access_token": {
            "token_endpoint": as_token,
            "expires_in": access.expires_in,
            "scope": access.scope,
            "claims": decode(&access.access_token),
        },
    });
    if args.raw {
        out["id_jag"]["raw"] = jag.access_token.expose_secret().into();
        out["access_token"]["raw"] = access.access_token.expose_secret().into();
    }
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

/// The brokered exchange: prints the outcome, or the consent link and fails.
async fn brokered(
    issuer: &str,
    auth: &ClientAuth,
    id_token: &SecretString,
    resource: &str,
    raw: bool,
) -> anyhow::Result<()> {
    let http = protocol::discovery::http_client().context("building the HTTP client")?;
    let org = protocol::discovery::discover(&http, issuer)
        .await
        .context("discovering the org authorization server")?;
    let endpoint = org
        .token_endpoint
        .context("the org authorization server has no token_endpoint")?;
    let answer = TokenClient::new()?
        .request(
            &endpoint,
            auth,
            &[
                (
                    "grant_type",
                    "urn:ietf:params:oauth:grant-type:token-exchange",
                ),
                ("requested_token_type", TokenType::OktaOauthSts.as_str()),
                ("subject_token", id_token.expose_secret()),
                ("subject_token_type", TokenType::IdToken.as_str()),
                ("resource", resource),
            ],
        )
        .await;
    match answer {
        Ok(tokens) => {
            let mut out = json!({
                "token_endpoint": endpoint,
                "resource": resource,
                "issued_token_type": tokens.issued_token_type.as_ref().map(|t| t.as_str().to_owned()),
                "token_type": tokens.token_type,
                "scope": tokens.scope,
                "expires_in": tokens.expires_in,
            });
            if raw {
                out["raw"] = tokens.access_token.expose_secret().into();
            }
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(())
        }
        Err(TokenClientError::OAuth { error, .. }) if error.interaction_uri.is_some() => {
            let uri = error.interaction_uri.unwrap_or_default();
            let out = json!({
                "status": "interaction_required",
                "interaction_uri": uri,
                "interval": error.interval,
                "expires_in": error.expires_in,
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
            anyhow::bail!(
                "consent is needed first: open {uri} in your browser, approve, then run this \
                 command again"
            )
        }
        Err(TokenClientError::OAuth { error, .. })
            if matches!(
                error.error,
                ErrorCode::InteractionPending | ErrorCode::SlowDown
            ) =>
        {
            anyhow::bail!(
                "consent is still pending ({}): finish it in the browser, then run this command \
                 again",
                error.error
            )
        }
        Err(e) => Err(e.into()),
    }
}
