//! Client authentication at the token, introspection and revocation endpoints:
//! `client_secret_basic` (RFC 6749 §2.3.1), `client_secret_post`, `private_key_jwt`
//! (RFC 7523 §2.2 / §3, OIDC Core §9) and public clients (`none`). A client uses exactly one
//! method, and only the one it registered.

use axum::http::HeaderMap;
use base64::Engine;
use protocol::claims::ClientAssertionClaims;
use protocol::oauth::CLIENT_ASSERTION_TYPE_JWT_BEARER;
use protocol::verify::{Expectations, TypeRule};
use secrecy::ExposeSecret;
use std::sync::Arc;

use crate::config::{AuthMethod, Client, ClientSecret};
use crate::error::OAuthError;
use crate::server::AuthServer;
use crate::state::Idp;
use crate::store::secret_hash;
use crate::token_request::Form;

/// A client assertion may live at most this long (RFC 7523 leaves it to policy; we pin 5 min).
pub const MAX_ASSERTION_LIFETIME: i64 = 300;

/// The credentials a request presented.
enum Presented<'a> {
    Basic {
        client_id: String,
        secret: String,
    },
    Post {
        client_id: &'a str,
        secret: &'a str,
    },
    Assertion {
        client_id: Option<&'a str>,
        assertion: &'a str,
    },
    Public {
        client_id: &'a str,
    },
}

impl Presented<'_> {
    fn method(&self) -> AuthMethod {
        match self {
            Self::Basic { .. } => AuthMethod::ClientSecretBasic,
            Self::Post { .. } => AuthMethod::ClientSecretPost,
            Self::Assertion { .. } => AuthMethod::PrivateKeyJwt,
            Self::Public { .. } => AuthMethod::None,
        }
    }
}

fn presented<'a>(headers: &HeaderMap, form: &'a Form) -> Result<Presented<'a>, OAuthError> {
    let basic = match headers.get(axum::http::header::AUTHORIZATION) {
        Some(value) => Some(parse_basic(value.to_str().unwrap_or_default())?),
        None => None,
    };
    let secret = form.get("client_secret");
    let assertion = form.get("client_assertion");
    let used = [basic.is_some(), secret.is_some(), assertion.is_some()]
        .iter()
        .filter(|b| **b)
        .count();
    if used > 1 {
        return Err(OAuthError::InvalidRequest(
            "use exactly one client authentication method".into(),
        ));
    }
    let form_client = form.get("client_id");
    if let Some((client_id, secret)) = basic {
        if form_client.is_some_and(|id| id != client_id) {
            return Err(OAuthError::invalid_client(
                "client_id differs from the Authorization header",
                true,
            ));
        }
        return Ok(Presented::Basic { client_id, secret });
    }
    if let Some(assertion) = assertion {
        if form.get("client_assertion_type") != Some(CLIENT_ASSERTION_TYPE_JWT_BEARER) {
            return Err(OAuthError::InvalidRequest(format!(
                "client_assertion_type must be {CLIENT_ASSERTION_TYPE_JWT_BEARER}"
            )));
        }
        return Ok(Presented::Assertion {
            client_id: form_client,
            assertion,
        });
    }
    let client_id =
        form_client.ok_or_else(|| OAuthError::invalid_client("no client authentication", false))?;
    Ok(match secret {
        Some(secret) => Presented::Post { client_id, secret },
        None => Presented::Public { client_id },
    })
}

/// RFC 6749 §2.3.1: `Basic base64(urlencode(id) ":" urlencode(secret))`.
fn parse_basic(header: &str) -> Result<(String, String), OAuthError> {
    let bad = || OAuthError::invalid_client("malformed Basic credentials", true);
    let (scheme, encoded) = header.split_once(' ').ok_or_else(bad)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(OAuthError::invalid_client(
            "only the Basic scheme authenticates clients",
            true,
        ));
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| bad())?;
    let text = String::from_utf8(decoded).map_err(|_| bad())?;
    let (id, secret) = text.split_once(':').ok_or_else(bad)?;
    let unescape = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .ok_or_else(bad)
    };
    Ok((unescape(id)?, unescape(secret)?))
}

/// Authenticates the client calling `endpoint` (its full URL) at `server`.
pub async fn authenticate(
    idp: &Idp,
    server: &AuthServer,
    endpoint: &str,
    headers: &HeaderMap,
    form: &Form,
) -> Result<Arc<Client>, OAuthError> {
    let presented = presented(headers, form)?;
    let basic = matches!(presented, Presented::Basic { .. });
    let fail = |why: &str| OAuthError::invalid_client(why, basic);
    let client_id = match &presented {
        Presented::Basic { client_id, .. } => client_id.as_str(),
        Presented::Post { client_id, .. } | Presented::Public { client_id } => client_id,
        Presented::Assertion {
            client_id,
            assertion,
        } => match client_id {
            Some(id) => id,
            None => return assertion_client(idp, server, endpoint, assertion).await,
        },
    };
    let client = idp
        .client(client_id)
        .ok_or_else(|| fail("unknown client"))?;
    if client.auth_method != presented.method() {
        return Err(fail(&format!(
            "client is registered for {}",
            client.auth_method.as_str()
        )));
    }
    match presented {
        Presented::Basic { secret, .. } => {
            check_secret(&client, &secret).map_err(|_| fail("invalid client credentials"))?
        }
        Presented::Post { secret, .. } => {
            check_secret(&client, secret).map_err(|_| fail("invalid client credentials"))?
        }
        Presented::Assertion { assertion, .. } => {
            verify_assertion(idp, server, endpoint, &client, assertion).await?
        }
        Presented::Public { .. } => {}
    }
    Ok(client)
}

/// A client assertion without `client_id`: the client is the assertion's `iss`.
async fn assertion_client(
    idp: &Idp,
    server: &AuthServer,
    endpoint: &str,
    assertion: &str,
) -> Result<Arc<Client>, OAuthError> {
    let claims = protocol::verify::decode_unverified(assertion)
        .map_err(|_| OAuthError::invalid_client("malformed client assertion", false))?;
    let client_id = claims
        .get("iss")
        .and_then(|v| v.as_str())
        .unwrap_or_default();
    let client = idp
        .client(client_id)
        .filter(|c| c.auth_method == AuthMethod::PrivateKeyJwt)
        .ok_or_else(|| OAuthError::invalid_client("unknown client", false))?;
    verify_assertion(idp, server, endpoint, &client, assertion).await?;
    Ok(client)
}

fn check_secret(client: &Client, presented: &str) -> Result<(), ()> {
    let registered = client.secret.as_ref().ok_or(())?;
    // Compare digests so timing reveals nothing about the secret's prefix.
    let presented = secret_hash(presented);
    let matches = match registered {
        ClientSecret::Plain(secret) => {
            protocol::constant_time::is_equal(secret_hash(secret.expose_secret()), &presented)
        }
        ClientSecret::Sha256(digest) => protocol::constant_time::is_equal(digest, &presented),
    };
    if matches { Ok(()) } else { Err(()) }
}

async fn verify_assertion(
    idp: &Idp,
    server: &AuthServer,
    endpoint: &str,
    client: &Client,
    assertion: &str,
) -> Result<(), OAuthError> {
    let fail = |why: String| OAuthError::invalid_client(why, false);
    let directory = idp.directory();
    let verifier = directory
        .client_verifier(&client.client_id)
        .ok_or_else(|| fail("client has no registered keys".into()))?;
    let expect = Expectations::new(&client.client_id, endpoint, TypeRule::ANY)
        .or_audience(&server.issuer)
        .or_audience(server.endpoint("token"));
    let verified = verifier
        .verify::<ClientAssertionClaims>(assertion, &expect)
        .await
        .map_err(|e| fail(format!("client assertion rejected: {e}")))?;
    let claims = verified.claims;
    if claims.sub != client.client_id {
        return Err(fail("client assertion sub must equal the client id".into()));
    }
    let now = idp.clock.now();
    if claims.exp > now + MAX_ASSERTION_LIFETIME + protocol::verify::DEFAULT_LEEWAY_SECONDS {
        return Err(fail("client assertion lifetime exceeds 5 minutes".into()));
    }
    if claims.jti.is_empty() {
        return Err(fail("client assertion has no jti".into()));
    }
    let fresh = idp
        .store
        .remember_jti(
            &format!("client:{}", client.client_id),
            &claims.jti,
            claims.exp,
        )
        .await?;
    if !fresh {
        return Err(fail("client assertion jti was already used".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_decoded() -> Result<(), OAuthError> {
        let encoded = base64::engine::general_purpose::STANDARD.encode("my%3Aclient:s%2Bcr%20t");
        let (id, secret) = parse_basic(&format!("Basic {encoded}"))?;
        assert_eq!((id.as_str(), secret.as_str()), ("my:client", "s+cr t"));
        Ok(())
    }

    #[test]
    fn bearer_is_not_client_authentication() {
        assert!(matches!(
            parse_basic("Bearer abc"),
            Err(OAuthError::InvalidClient { basic: true, .. })
        ));
    }
}
