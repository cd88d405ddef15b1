//! Fetching metadata: OIDC Discovery §4 / RFC 8414 §3 with the issuer check of RFC 8414 §3.3,
//! and bounded JSON GETs for JWKS documents.

use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::metadata::{AuthorizationServerMetadata, discovery_urls};

/// Metadata and JWKS documents larger than this are refused.
pub const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;

/// Why a document could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// Transport failure.
    #[error("request to {url} failed: {message}")]
    Http {
        /// The URL.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// Non-success status.
    #[error("{url} answered HTTP {status}")]
    Status {
        /// The URL.
        url: String,
        /// The status.
        status: u16,
    },
    /// The body was too large or not the expected JSON.
    #[error("{url} returned an invalid document: {message}")]
    Invalid {
        /// The URL.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// The document names another issuer (RFC 8414 §3.3).
    #[error("metadata issuer {found:?} does not match {expected:?}")]
    IssuerMismatch {
        /// The issuer asked for.
        expected: String,
        /// The issuer in the document.
        found: String,
    },
    /// No well-known URL answered.
    #[error("no metadata found for issuer {0}")]
    NotFound(String),
}

/// A reqwest client suitable for metadata fetches: no redirects, bounded time.
///
/// Fails closed: if the builder fails (no TLS backend, unreadable system configuration), the
/// caller gets the error rather than a default client, which would follow redirects and wait
/// forever — the settings a client that sends secrets to discovered endpoints needs most.
pub fn http_client() -> Result<reqwest::Client, reqwest::Error> {
    crate::trust::client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
}

/// `e` with its causes (`error sending request …: … invalid peer certificate: UnknownIssuer`):
/// reqwest's own text leaves out why, which is what a person needs (a CA not trusted, a refused
/// connection, a timeout).
pub fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(inner) = cause {
        let part = inner.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        cause = inner.source();
    }
    text
}

/// GETs `url` and parses a bounded JSON body.
pub async fn get_json<T: DeserializeOwned>(
    http: &reqwest::Client,
    url: &str,
) -> Result<T, DiscoveryError> {
    let http_err = |e: reqwest::Error| DiscoveryError::Http {
        url: url.to_owned(),
        message: with_causes(&e),
    };
    let response = http
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(http_err)?;
    if !response.status().is_success() {
        return Err(DiscoveryError::Status {
            url: url.to_owned(),
            status: response.status().as_u16(),
        });
    }
    if response
        .content_length()
        .is_some_and(|len| len > MAX_DOCUMENT_BYTES as u64)
    {
        return Err(DiscoveryError::Invalid {
            url: url.to_owned(),
            message: "too large".into(),
        });
    }
    let body = response.bytes().await.map_err(http_err)?;
    if body.len() > MAX_DOCUMENT_BYTES {
        return Err(DiscoveryError::Invalid {
            url: url.to_owned(),
            message: "too large".into(),
        });
    }
    serde_json::from_slice(&body).map_err(|e| DiscoveryError::Invalid {
        url: url.to_owned(),
        message: with_causes(&e),
    })
}

/// Discovers an authorization server's metadata, trying the OIDC and RFC 8414 well-known URLs in
/// turn, and insists that the document's `issuer` is exactly `issuer`.
pub async fn discover(
    http: &reqwest::Client,
    issuer: &str,
) -> Result<AuthorizationServerMetadata, DiscoveryError> {
    let mut last_error = None;
    for url in discovery_urls(issuer) {
        match get_json::<AuthorizationServerMetadata>(http, &url).await {
            Ok(metadata) if metadata.issuer == issuer => return Ok(metadata),
            Ok(metadata) => {
                return Err(DiscoveryError::IssuerMismatch {
                    expected: issuer.to_owned(),
                    found: metadata.issuer,
                });
            }
            Err(e @ (DiscoveryError::Status { .. } | DiscoveryError::Invalid { .. })) => {
                last_error = Some(e)
            }
            Err(e) => return Err(e),
        }
    }
    Err(last_error.unwrap_or_else(|| DiscoveryError::NotFound(issuer.to_owned())))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use axum::Router;
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse;
    use axum::routing::get;

    use super::*;

    /// A client that followed the redirect would reach `/secret-sink` and see 200; ours must stop
    /// at the 302 so a metadata URL cannot bounce a request (and what follows it) elsewhere.
    #[test]
    fn an_error_names_its_causes_once() {
        #[derive(Debug)]
        struct Layer(&'static str, Option<Box<Layer>>);
        impl std::fmt::Display for Layer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.0)
            }
        }
        impl std::error::Error for Layer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                self.1.as_deref().map(|l| l as _)
            }
        }
        let chain = Layer(
            "error sending request",
            Some(Box::new(Layer(
                "client error (Connect)",
                Some(Box::new(Layer(
                    "invalid peer certificate: UnknownIssuer",
                    None,
                ))),
            ))),
        );
        assert_eq!(
            with_causes(&chain),
            "error sending request: client error (Connect): invalid peer certificate: UnknownIssuer"
        );
    }

    #[tokio::test]
    async fn the_client_does_not_follow_redirects() {
        let app = Router::new()
            .route(
                "/.well-known/openid-configuration",
                get(|| async {
                    (StatusCode::FOUND, [(header::LOCATION, "/secret-sink")]).into_response()
                }),
            )
            .route("/secret-sink", get(|| async { "followed" }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move { axum::serve(listener, app).await });

        let http = http_client().unwrap();
        let url = format!("http://{addr}/.well-known/openid-configuration");
        let response = http.get(&url).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::FOUND);
        assert_eq!(
            response.headers().get(header::LOCATION).unwrap(),
            "/secret-sink"
        );
        let refused = get_json::<serde_json::Value>(&http, &url).await;
        assert!(
            matches!(refused, Err(DiscoveryError::Status { status: 302, .. })),
            "{refused:?}"
        );
        server.abort();
    }
}
