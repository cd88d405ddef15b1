//! Cross-App Access in one call (ARCHITECTURE §5.3, draft-ietf-oauth-identity-assertion-authz-grant
//! §4.3–4.4): the person's subject token for an ID-JAG at the org authorization server (RFC 8693
//! token exchange), then that ID-JAG for an access token at the resource authorization server
//! (RFC 7523 JWT bearer grant), with one client authentication for both steps. The agent's
//! broker, the CLI and the tests all come here, so the two steps are written once; caching and
//! single-flight stay with the callers.

use std::fmt;

use secrecy::ExposeSecret;

use super::{ClientAuth, IdJagRequest, TokenClient, TokenClientError};
use crate::claims::IdJagClaims;
use crate::oauth::{ErrorCode, ErrorResponse, TokenResponse};

/// Where both steps happen and what step 1 asks for.
#[derive(Debug)]
pub struct CrossAppAccess<'a> {
    /// The org authorization server's token endpoint (step 1).
    pub org_token_endpoint: &'a str,
    /// The resource authorization server's token endpoint (step 2): the AS whose issuer is
    /// `request.audience`.
    pub resource_token_endpoint: &'a str,
    /// Step 1's parameters.
    pub request: IdJagRequest<'a>,
}

/// What both steps produced.
#[derive(Debug)]
pub struct CrossAppAccessGrant {
    /// Step 1's response. Its token is already redeemed (ID-JAGs are single use): kept only for
    /// diagnostics such as `secure-agent token exchange --raw`.
    pub id_jag: TokenResponse,
    /// The ID-JAG's claims, decoded without verifying its signature: the client is not its
    /// audience, the resource authorization server verifies it.
    pub id_jag_claims: IdJagClaims,
    /// Step 2's response: the access token (`token_type` Bearer).
    pub access: TokenResponse,
}

/// One of the two steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrossAppAccessStep {
    /// Step 1: the subject token for an ID-JAG at the org authorization server.
    IdJag,
    /// Step 2: the ID-JAG for an access token at the resource authorization server.
    AccessToken,
}

impl fmt::Display for CrossAppAccessStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::IdJag => "step 1 (token exchange for an ID-JAG)",
            Self::AccessToken => "step 2 (JWT bearer with the ID-JAG)",
        })
    }
}

/// Which step failed, and why (the server's OAuth error body when it answered one).
#[derive(Debug, thiserror::Error)]
#[error("Cross-App Access {step} failed")]
pub struct CrossAppAccessError {
    /// The step that failed.
    pub step: CrossAppAccessStep,
    /// What went wrong there.
    #[source]
    pub source: TokenClientError,
}

impl CrossAppAccessError {
    /// The RFC 6749 §5.2 error body, when the server refused with one.
    pub fn oauth_error(&self) -> Option<&ErrorResponse> {
        match &self.source {
            TokenClientError::OAuth { error, .. } => Some(error),
            TokenClientError::Http { .. }
            | TokenClientError::Invalid { .. }
            | TokenClientError::Signing(_) => None,
        }
    }

    /// The OAuth error code (`invalid_grant`, `invalid_client`, …), when the server sent one.
    pub fn error_code(&self) -> Option<&ErrorCode> {
        self.oauth_error().map(|e| &e.error)
    }
}

impl TokenClient {
    /// Both Cross-App Access steps, authenticating as `auth` at each: an ID-JAG for
    /// `exchange.request` at the org AS, redeemed at once at the resource AS. A step 1 response
    /// whose token is not a JWT with the draft's ID-JAG claims fails step 1.
    pub async fn exchange_for_access_token(
        &self,
        auth: &ClientAuth,
        exchange: &CrossAppAccess<'_>,
    ) -> Result<CrossAppAccessGrant, CrossAppAccessError> {
        let step1 = |source| CrossAppAccessError {
            step: CrossAppAccessStep::IdJag,
            source,
        };
        let id_jag = self
            .exchange_for_id_jag(exchange.org_token_endpoint, auth, &exchange.request)
            .await
            .map_err(step1)?;
        let id_jag_claims = decode_claims(&id_jag).ok_or_else(|| {
            step1(TokenClientError::Invalid {
                endpoint: exchange.org_token_endpoint.to_owned(),
                message: "the ID-JAG is not a JWT with the ID-JAG claims".into(),
            })
        })?;
        let access = self
            .redeem_id_jag(exchange.resource_token_endpoint, auth, &id_jag.access_token)
            .await
            .map_err(|source| CrossAppAccessError {
                step: CrossAppAccessStep::AccessToken,
                source,
            })?;
        Ok(CrossAppAccessGrant {
            id_jag,
            id_jag_claims,
            access,
        })
    }
}

fn decode_claims(id_jag: &TokenResponse) -> Option<IdJagClaims> {
    let claims = crate::verify::decode_unverified(id_jag.access_token.expose_secret()).ok()?;
    serde_json::from_value(claims).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(step: CrossAppAccessStep, source: TokenClientError) -> CrossAppAccessError {
        CrossAppAccessError { step, source }
    }

    #[test]
    fn the_error_names_the_step_and_keeps_the_oauth_code() {
        let refused = failed(
            CrossAppAccessStep::AccessToken,
            TokenClientError::OAuth {
                endpoint: "http://as/token".into(),
                status: 400,
                error: ErrorResponse::new(ErrorCode::InvalidGrant, "replayed"),
            },
        );
        assert_eq!(
            refused.to_string(),
            "Cross-App Access step 2 (JWT bearer with the ID-JAG) failed"
        );
        assert_eq!(refused.error_code(), Some(&ErrorCode::InvalidGrant));
        let unreachable = failed(
            CrossAppAccessStep::IdJag,
            TokenClientError::Http {
                endpoint: "http://idp/token".into(),
                message: "connection refused".into(),
            },
        );
        assert!(unreachable.to_string().contains("step 1"));
        assert_eq!(unreachable.error_code(), None);
    }
}
