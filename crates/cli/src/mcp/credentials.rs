//! Where `mcp` gets its access tokens: a fixed bearer token, or Cross-App Access
//! (ARCHITECTURE §5.3) — the user's ID token exchanged at the IdP for an ID-JAG, redeemed at the
//! MCP server's authorization server — with one client authentication (`private_key_jwt`,
//! `client_secret_basic` or `client_secret_post`) used for both legs. A fresh ID-JAG is
//! requested for every token: ID-JAGs are never reused.

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use protocol::Scopes;
use protocol::assertion::ClientAssertionSigner;
use protocol::oauth::TokenType;
use protocol::token_client::{ClientAuth, CrossAppAccess, IdJagRequest, TokenClient};
use secrecy::SecretString;

use super::discovery::Protection;
use crate::settings::Settings;

/// Token options shared by the `mcp` subcommands.
#[derive(clap::Args)]
pub(crate) struct AuthArgs {
    /// An access token to send as is: no discovery, no step-up; `-` reads it from standard
    /// input. Env: MCP_BEARER_TOKEN.
    #[arg(long, value_name = "TOKEN")]
    bearer: Option<String>,
    /// The user's ID token for Cross-App Access; `-` reads it from standard input. Env: ID_TOKEN.
    /// Default: the one `secure-agent login` cached for the issuer (--issuer / OKTA_DOMAIN).
    #[arg(long, value_name = "TOKEN")]
    id_token: Option<String>,
    /// The IdP's (org) issuer, to discover its token endpoint. Env: OKTA_DOMAIN.
    #[arg(long)]
    issuer: Option<String>,
    /// The IdP's token endpoint (skips discovery). Env: IDP_TOKEN_ENDPOINT.
    #[arg(long, value_name = "URL")]
    idp_token_endpoint: Option<String>,
    /// The agent's client id (both legs). Env: AI_AGENT_ID.
    #[arg(long, visible_alias = "client-id", value_name = "ID")]
    agent_id: Option<String>,
    /// Client authentication for both legs. Default: `basic` when a client secret is
    /// configured, else `private-key-jwt`.
    #[arg(long, value_enum)]
    client_auth: Option<ClientAuthMethod>,
    /// The agent's private key (PEM) for private_key_jwt. Env: AI_AGENT_PRIVATE_KEY_FILE.
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,
    /// The key's kid. Env: AI_AGENT_PRIVATE_KEY_KID.
    #[arg(long)]
    kid: Option<String>,
    /// The client secret for `basic` / `post` (prefer the environment: command lines are
    /// visible to other local users). Env: AI_AGENT_CLIENT_SECRET.
    #[arg(long, value_name = "SECRET")]
    client_secret: Option<String>,
    /// Extra scopes to request up front (space-separated), besides those the server's
    /// challenge asks for. Normally unnecessary: missing scopes are stepped up on demand.
    #[arg(long)]
    scope: Option<String>,
}

/// Token-endpoint client authentication.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ClientAuthMethod {
    /// RFC 7523 client assertion signed with `--key`.
    #[value(name = "private-key-jwt", alias = "private_key_jwt")]
    PrivateKeyJwt,
    /// client_secret_basic (HTTP Basic).
    #[value(alias = "client_secret_basic")]
    Basic,
    /// client_secret_post (in the form body).
    #[value(alias = "client_secret_post")]
    Post,
}

/// The user's credentials as configured, before the server has been contacted.
pub(super) enum Credentials {
    /// `--bearer`: sent as is.
    Bearer(SecretString),
    /// An ID token for Cross-App Access.
    IdToken(SecretString),
    /// Nothing: fine for a server that asks for no token.
    None,
}

impl AuthArgs {
    /// The configured credentials; reads standard input for `-`.
    pub(super) fn credentials(&self, settings: &Settings) -> anyhow::Result<Credentials> {
        let stdin_taken = |a: &Option<String>| a.as_deref() == Some("-");
        if stdin_taken(&self.bearer) && stdin_taken(&self.id_token) {
            anyhow::bail!("only one of --bearer and --id-token can read standard input");
        }
        if let Some(token) = settings.get(self.bearer.as_deref(), "MCP_BEARER_TOKEN") {
            return Ok(Credentials::Bearer(secret_or_stdin(token, "--bearer")?));
        }
        match settings.get(self.id_token.as_deref(), "ID_TOKEN") {
            Some(token) => Ok(Credentials::IdToken(secret_or_stdin(token, "--id-token")?)),
            None => Ok(Credentials::None),
        }
    }

    /// The ID token `secure-agent login` cached for the issuer (`--issuer` / `OKTA_DOMAIN`),
    /// refreshed if it has expired.
    pub(super) async fn cached_id_token(
        &self,
        settings: &Settings,
        data_dir: &std::path::Path,
    ) -> anyhow::Result<SecretString> {
        let domain = settings.require(
            self.issuer.as_deref(),
            "--id-token (or ID_TOKEN), or --issuer for the token `secure-agent login` cached",
            "OKTA_DOMAIN",
        )?;
        let issuer = devstack::issuer_from_okta_domain(&domain);
        crate::login::cached_id_token(data_dir, &issuer).await
    }

    /// Extra scopes from `--scope`.
    pub(super) fn extra_scopes(&self) -> anyhow::Result<Scopes> {
        match &self.scope {
            Some(scope) => Scopes::parse(scope).context("--scope"),
            None => Ok(Scopes::empty()),
        }
    }

    /// Everything Cross-App Access needs besides the server's side: client authentication
    /// and the IdP's token endpoint (discovered from the issuer unless given).
    pub(super) async fn token_source(
        &self,
        settings: &Settings,
        http: &reqwest::Client,
        id_token: SecretString,
        protection: Protection,
    ) -> anyhow::Result<TokenSource> {
        let auth = self.client_auth(settings)?;
        let idp_token_endpoint =
            match settings.get(self.idp_token_endpoint.as_deref(), "IDP_TOKEN_ENDPOINT") {
                Some(endpoint) => endpoint,
                None => {
                    let domain = settings.require(
                        self.issuer.as_deref(),
                        "--issuer (or --idp-token-endpoint)",
                        "OKTA_DOMAIN",
                    )?;
                    let issuer = devstack::issuer_from_okta_domain(&domain);
                    protocol::discovery::discover(http, &issuer)
                        .await
                        .with_context(|| format!("discovering the IdP {issuer}"))?
                        .token_endpoint
                        .with_context(|| format!("the IdP {issuer} has no token_endpoint"))?
                }
            };
        Ok(TokenSource {
            client: TokenClient::new()?,
            auth,
            id_token,
            idp_token_endpoint,
            protection,
        })
    }

    fn client_auth(&self, settings: &Settings) -> anyhow::Result<ClientAuth> {
        let client_id = settings.require(
            self.agent_id.as_deref(),
            "--agent-id/--client-id",
            "AI_AGENT_ID",
        )?;
        let secret = settings.get(self.client_secret.as_deref(), "AI_AGENT_CLIENT_SECRET");
        let method = self.client_auth.unwrap_or(if secret.is_some() {
            ClientAuthMethod::Basic
        } else {
            ClientAuthMethod::PrivateKeyJwt
        });
        let require_secret = || {
            secret.clone().map(SecretString::from).context(
                "missing --client-secret (or AI_AGENT_CLIENT_SECRET) for --client-auth basic/post",
            )
        };
        Ok(match method {
            ClientAuthMethod::PrivateKeyJwt => {
                let key = settings.require_agent_key(self.key.as_deref(), self.kid.as_deref())?;
                ClientAuth::PrivateKeyJwt(ClientAssertionSigner::new(
                    client_id,
                    Arc::new(key),
                    protocol::clock::system(),
                ))
            }
            ClientAuthMethod::Basic => ClientAuth::SecretBasic {
                client_id,
                secret: require_secret()?,
            },
            ClientAuthMethod::Post => ClientAuth::SecretPost {
                client_id,
                secret: require_secret()?,
            },
        })
    }
}

fn secret_or_stdin(value: String, flag: &str) -> anyhow::Result<SecretString> {
    if value != "-" {
        return Ok(SecretString::from(value));
    }
    let mut token = String::new();
    std::io::stdin()
        .read_to_string(&mut token)
        .with_context(|| format!("reading {flag} from standard input"))?;
    let token = token.trim();
    anyhow::ensure!(!token.is_empty(), "{flag} -: standard input was empty");
    Ok(SecretString::from(token.to_owned()))
}

/// Mints access tokens for one protected server with Cross-App Access.
pub(super) struct TokenSource {
    client: TokenClient,
    auth: ClientAuth,
    id_token: SecretString,
    idp_token_endpoint: String,
    pub(super) protection: Protection,
}

impl TokenSource {
    /// A new access token for `scopes` (empty: the authorization server's defaults) from a new
    /// ID-JAG. Returns the token and the granted scopes.
    pub(super) async fn mint(&self, scopes: &Scopes) -> anyhow::Result<(SecretString, Scopes)> {
        let scope = (!scopes.is_empty()).then(|| scopes.to_string());
        let exchange = CrossAppAccess {
            org_token_endpoint: &self.idp_token_endpoint,
            resource_token_endpoint: &self.protection.as_token_endpoint,
            request: IdJagRequest {
                subject_token: &self.id_token,
                subject_token_type: TokenType::IdToken,
                audience: &self.protection.as_issuer,
                resource: Some(&self.protection.resource),
                scope: scope.as_deref(),
            },
        };
        let access = self
            .client
            .exchange_for_access_token(&self.auth, &exchange)
            .await
            .with_context(|| {
                format!(
                    "getting an access token from the authorization server {}",
                    self.protection.as_issuer
                )
            })?
            .access;
        let granted = access
            .granted_scopes(scopes)
            .context("the granted scope is malformed")?;
        Ok((access.access_token, granted))
    }
}
