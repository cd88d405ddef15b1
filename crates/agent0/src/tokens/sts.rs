//! Brokered consent ("OAuth STS", OKTA.md §1, ARCHITECTURE §5.4): the person's ID token is
//! exchanged at the org authorization server for the ISV access token it holds for them
//! (`requested_token_type=urn:okta:params:oauth:token-type:oauth-sts`, `resource` = the managed
//! connection's resource indicator), with the agent's own client authentication. The outcomes
//! are typed: a token (cached per person and connection until [`super::EXPIRY_MARGIN`] before
//! it expires, one exchange in flight per key), `interaction_required` with its link, and the
//! polling answers of draft-parecki-oauth-jwt-grant-interaction-response
//! (`interaction_pending`, `slow_down`, `access_denied`, `expired_token`). Only tokens are
//! cached, never a refusal: the same request is simply sent again once the person consented.
//! The last consent link of each (person, connection) is remembered while it is open
//! ([`TokenBroker::open_interaction`]), because the IdP names it only once: the retries that
//! follow answer `interaction_pending`.

use std::sync::atomic::Ordering;

use protocol::Scopes;
use protocol::oauth::{ErrorCode, GrantType, TokenType};
use protocol::token_client::TokenClientError;
use secrecy::{ExposeSecret, SecretString};

use super::{
    AccessToken, DEFAULT_LIFETIME, Principal, TokenBroker, TokenError, TokenKey, usable_until,
};

/// The cache key's scope part for brokered tokens (their scopes are the connection's).
const STS_KEY: &str = "oauth-sts";
/// Okta's `token_type_hint` for a brokered (ISV) token at the revocation endpoint (OKTA.md §1).
const OAUTH_STS_HINT: &str = "oauth_sts";
/// The longest a consent link is remembered, in seconds, whatever its `expires_in` says.
const MAX_INTERACTION_MEMORY: i64 = 600;
/// Consent links remembered at most (least recently used dropped first).
const INTERACTION_CAPACITY: u64 = 10_000;

/// A consent link the IdP handed out and until when it is good.
#[derive(Debug, Clone)]
pub(super) struct OpenInteraction {
    interaction_uri: String,
    interval: Option<u64>,
    expires_at: protocol::UnixTime,
}

/// The broker's memory of open consent links.
pub(super) fn interactions_cache() -> moka::sync::Cache<TokenKey, OpenInteraction> {
    moka::sync::Cache::builder()
        .max_capacity(INTERACTION_CAPACITY)
        .time_to_live(std::time::Duration::from_secs(
            MAX_INTERACTION_MEMORY.unsigned_abs(),
        ))
        .support_invalidation_closures()
        .build()
}

/// A brokered connection: its name (cache key, audit) and the resource indicator sent verbatim.
#[derive(Debug, Clone, Copy)]
pub struct StsTarget<'a> {
    /// The connection's name.
    pub connection: &'a str,
    /// Its resource indicator.
    pub resource: &'a str,
}

fn sts_key(principal: &Principal, target: StsTarget<'_>) -> TokenKey {
    TokenKey {
        subject: principal.subject.clone(),
        connection: target.connection.to_owned(),
        scopes: STS_KEY.to_owned(),
    }
}

impl TokenBroker {
    /// The same broker, sending brokered exchanges to `endpoint` instead of the org token
    /// endpoint (`OAUTH_STS_TOKEN_ENDPOINT`).
    pub fn with_sts_token_endpoint(mut self, endpoint: Option<String>) -> Self {
        self.sts_token_endpoint = endpoint;
        self
    }

    /// Where brokered exchanges go.
    pub fn sts_token_endpoint(&self) -> &str {
        self.sts_token_endpoint
            .as_deref()
            .unwrap_or(&self.org_token_endpoint)
    }

    /// The ISV access token for `principal` at `target`: cached, or exchanged (once, however
    /// many ask at the same time). Consent not given yet is an error the caller shows as a
    /// consent card ([`TokenError::InteractionRequired`]) or keeps polling
    /// ([`TokenError::ConsentPending`]).
    pub async fn brokered_token(
        &self,
        principal: &Principal,
        target: StsTarget<'_>,
    ) -> Result<AccessToken, TokenError> {
        let key = sts_key(principal, target);
        let outcome = self
            .cached_or_minted(key.clone(), || self.exchange_sts(principal, target))
            .await;
        match &outcome {
            Err(TokenError::InteractionRequired {
                interaction_uri,
                interval,
                expires_in,
                ..
            }) => {
                let lifetime = expires_in.map_or(MAX_INTERACTION_MEMORY, |s| {
                    i64::try_from(s)
                        .unwrap_or(i64::MAX)
                        .min(MAX_INTERACTION_MEMORY)
                });
                self.interactions.insert(
                    key,
                    OpenInteraction {
                        interaction_uri: interaction_uri.clone(),
                        interval: *interval,
                        expires_at: self.clock.now() + lifetime,
                    },
                );
            }
            // Still open: the link stays good.
            Err(TokenError::ConsentPending { .. }) => {}
            _ => self.interactions.invalidate(&key),
        }
        outcome
    }

    /// The consent link the IdP last handed out for `principal` at `target`, while it is still
    /// open, as the error a call shows its card for. An exchange answers `interaction_pending`
    /// without the link while the person has not acted on it: a call that meets that (the link
    /// came with an exchange nobody showed, such as a tool listing's) shows this one instead.
    pub fn open_interaction(
        &self,
        principal: &Principal,
        target: StsTarget<'_>,
    ) -> Option<TokenError> {
        let open = self.interactions.get(&sts_key(principal, target))?;
        let left = open.expires_at - self.clock.now();
        (left > 0).then(|| TokenError::InteractionRequired {
            connection: target.connection.to_owned(),
            interaction_uri: open.interaction_uri,
            interval: open.interval,
            expires_in: u64::try_from(left).ok(),
        })
    }

    /// Whether an ISV token for `target` is cached for `principal` (no exchange).
    pub async fn has_brokered_token(&self, principal: &Principal, target: StsTarget<'_>) -> bool {
        matches!(
            self.cache.get(&sts_key(principal, target)).await,
            Ok(Some(_))
        )
    }

    /// Drops the ISV token the ISV refused (revoked there, or expired early).
    pub async fn forget_brokered(&self, principal: &Principal, target: StsTarget<'_>) {
        if let Err(e) = self.cache.invalidate(&sts_key(principal, target)).await {
            tracing::warn!(error = %e, "a refused ISV token could not be dropped from the cache");
        }
    }

    /// Where a brokered token is revoked (OKTA.md §1): the org authorization server's
    /// revocation endpoint beside the token endpoint brokered exchanges go to
    /// (`{org}/oauth2/v1/token` → `{org}/oauth2/v1/revoke`); `None` when that endpoint's path
    /// does not end in `/token`.
    pub fn sts_revocation_endpoint(&self) -> Option<String> {
        let mut url = url::Url::parse(self.sts_token_endpoint()).ok()?;
        let path = url.path().strip_suffix("/token")?.to_owned();
        url.set_path(&format!("{path}/revoke"));
        Some(url.into())
    }

    /// The ISV refused `refused` (revoked there, or expired early): tells the IdP, which would
    /// otherwise hand the same token back until it expires, with RFC 7009 revocation and
    /// `token_type_hint=oauth_sts` (OKTA.md §1), then drops it from the cache, so the next
    /// exchange gets a refreshed token or `interaction_required`. One per (person, connection)
    /// at a time; when the cache already holds another token (someone renewed it meanwhile),
    /// nothing is revoked. A failed revocation is logged and the caller exchanges anyway.
    #[tracing::instrument(skip_all, fields(user = %principal.subject, connection = %target.connection))]
    pub async fn revoke_brokered(
        &self,
        principal: &Principal,
        target: StsTarget<'_>,
        refused: &SecretString,
    ) {
        let key = sts_key(principal, target);
        let _revoking = self.minting.lock(key.clone()).await;
        match self.cache.get(&key).await {
            Ok(Some(cached)) if cached.token.expose_secret() != refused.expose_secret() => return,
            _ => {}
        }
        match self.sts_revocation_endpoint() {
            Some(endpoint) => match self
                .client
                .revoke(&endpoint, &self.agent, refused, Some(OAUTH_STS_HINT))
                .await
            {
                Ok(()) => {
                    tracing::info!(target: "agent0::audit", "refused ISV token revoked at the identity provider");
                }
                // The error names the endpoint and the IdP's error code, never the token.
                Err(e) => tracing::warn!(error = %e, "revoking a refused ISV token failed"),
            },
            None => tracing::warn!(
                endpoint = %self.sts_token_endpoint(),
                "no revocation endpoint beside the brokered token endpoint: a refused ISV token \
                 was not revoked"
            ),
        }
        self.forget_brokered(principal, target).await;
    }

    #[tracing::instrument(skip_all, fields(user = %principal.subject, connection = %target.connection))]
    async fn exchange_sts(
        &self,
        principal: &Principal,
        target: StsTarget<'_>,
    ) -> Result<AccessToken, TokenError> {
        self.exchanges.fetch_add(1, Ordering::Relaxed);
        self.brokered_exchanges.fetch_add(1, Ordering::Relaxed);
        let endpoint = self.sts_token_endpoint();
        let grant = GrantType::TokenExchange.to_string();
        let requested = TokenType::OktaOauthSts.to_string();
        let subject_type = TokenType::IdToken.to_string();
        let params = [
            ("grant_type", grant.as_str()),
            ("requested_token_type", requested.as_str()),
            ("subject_token", principal.id_token.expose_secret()),
            ("subject_token_type", subject_type.as_str()),
            ("resource", target.resource),
        ];
        let response = self
            .client
            .request(endpoint, &self.agent, &params)
            .await
            .map_err(|e| sts_refused(e, target.connection))?;
        let issued_ok = response
            .issued_token_type
            .as_ref()
            .is_none_or(|t| *t == TokenType::OktaOauthSts);
        if !issued_ok || !response.token_type.eq_ignore_ascii_case("Bearer") {
            return Err(TokenError::Refused(format!(
                "the identity provider answered the exchange for {} with something other than a \
                 Bearer oauth-sts token",
                target.connection
            )));
        }
        let lifetime = response.expires_in.unwrap_or(DEFAULT_LIFETIME);
        let scopes = response
            .scope
            .as_deref()
            .and_then(|s| Scopes::parse(s).ok())
            .unwrap_or_else(Scopes::empty);
        tracing::info!(target: "agent0::audit", granted = %scopes, expires_in = lifetime, "ISV token obtained by brokered consent");
        Ok(AccessToken {
            token: response.access_token,
            scopes,
            expires_at: usable_until(self.clock.now(), lifetime),
        })
    }
}

/// The typed outcome of a refused brokered exchange.
fn sts_refused(error: TokenClientError, connection: &str) -> TokenError {
    let connection = connection.to_owned();
    match error {
        TokenClientError::OAuth { error, .. } => match (error.error, error.interaction_uri) {
            (_, Some(interaction_uri)) => TokenError::InteractionRequired {
                connection,
                interaction_uri,
                interval: error.interval,
                expires_in: error.expires_in,
            },
            (ErrorCode::InteractionPending, None) => TokenError::ConsentPending {
                connection,
                slow_down: false,
            },
            (ErrorCode::SlowDown, None) => TokenError::ConsentPending {
                connection,
                slow_down: true,
            },
            (ErrorCode::AccessDenied, None) => TokenError::ConsentDenied { connection },
            (ErrorCode::ExpiredToken, None) => TokenError::ConsentExpired { connection },
            (ErrorCode::InvalidGrant, None) => TokenError::LoginExpired,
            // idp0 answers 503 temporarily_unavailable when the ISV is down: it may pass.
            (ErrorCode::TemporarilyUnavailable | ErrorCode::ServerError, None) => {
                TokenError::Unavailable(format!(
                    "the identity provider cannot reach {connection}'s app right now"
                ))
            }
            (code, None) => TokenError::Refused(format!(
                "the identity provider refused access to {connection}: {code}{}",
                error
                    .error_description
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default()
            )),
        },
        TokenClientError::Http { endpoint, message } => TokenError::Unavailable(format!(
            "the identity provider at {endpoint} could not be reached: {message}"
        )),
        e @ (TokenClientError::Invalid { .. } | TokenClientError::Signing(_)) => {
            TokenError::Refused(format!("getting a token for {connection} failed: {e}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use protocol::oauth::ErrorResponse;

    use super::*;

    fn oauth(code: &str, uri: Option<&str>) -> TokenClientError {
        let mut error = ErrorResponse::new(ErrorCode::from(code), "because");
        error.interaction_uri = uri.map(str::to_owned);
        error.interval = Some(2);
        TokenClientError::OAuth {
            endpoint: "http://idp/token".into(),
            status: 400,
            error,
        }
    }

    #[test]
    fn the_revocation_endpoint_is_beside_the_token_endpoint() {
        let broker = |endpoint: &str| {
            let auth = protocol::token_client::ClientAuth::None {
                client_id: "a".into(),
            };
            TokenBroker::new(endpoint.into(), auth, protocol::clock::system()).expect("a broker")
        };
        let org = broker("https://org.example/oauth2/v1/token");
        assert_eq!(
            org.sts_revocation_endpoint().as_deref(),
            Some("https://org.example/oauth2/v1/revoke")
        );
        let sts = org.with_sts_token_endpoint(Some("http://127.0.0.1:9/x/oauth2/v1/token".into()));
        assert_eq!(
            sts.sts_revocation_endpoint().as_deref(),
            Some("http://127.0.0.1:9/x/oauth2/v1/revoke")
        );
        assert_eq!(
            broker("https://org.example/tok").sts_revocation_endpoint(),
            None
        );
    }

    #[test]
    fn every_draft_answer_is_typed() {
        assert!(matches!(
            sts_refused(oauth("interaction_required", Some("https://idp/i/1")), "github"),
            TokenError::InteractionRequired { connection, interaction_uri, interval: Some(2), .. }
                if connection == "github" && interaction_uri == "https://idp/i/1"
        ));
        assert!(matches!(
            sts_refused(oauth("interaction_pending", None), "github"),
            TokenError::ConsentPending {
                slow_down: false,
                ..
            }
        ));
        assert!(matches!(
            sts_refused(oauth("slow_down", None), "github"),
            TokenError::ConsentPending {
                slow_down: true,
                ..
            }
        ));
        assert!(matches!(
            sts_refused(oauth("access_denied", None), "github"),
            TokenError::ConsentDenied { .. }
        ));
        assert!(matches!(
            sts_refused(oauth("expired_token", None), "github"),
            TokenError::ConsentExpired { .. }
        ));
        assert!(matches!(
            sts_refused(oauth("invalid_grant", None), "github"),
            TokenError::LoginExpired
        ));
        assert!(matches!(
            sts_refused(oauth("temporarily_unavailable", None), "github"),
            TokenError::Unavailable(_)
        ));
        let other = sts_refused(oauth("invalid_target", None), "github").to_string();
        assert_eq!(
            other,
            "the identity provider refused access to github: invalid_target (because)"
        );
    }
}
