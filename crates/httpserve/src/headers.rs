//! The security headers of browser-facing apps, set with tower-http's `SetResponseHeaderLayer`
//! rather than by hand: each app's own `Content-Security-Policy` (CSP Level 3; the policies
//! differ per app, so each passes its own), `X-Content-Type-Options: nosniff` (Fetch §3.8),
//! `X-Frame-Options: DENY` (RFC 7034; `frame-ancestors 'none'` says the same to CSP-aware
//! browsers) and a `Referrer-Policy`; plus the two `Cache-Control: no-store` variants the apps use.

use axum::Router;
use axum::http::{HeaderValue, header};
use tower_http::set_header::SetResponseHeaderLayer;

/// `Referrer-Policy: no-referrer`: nothing is sent, not even to the app itself.
pub const NO_REFERRER: HeaderValue = HeaderValue::from_static("no-referrer");
/// `Referrer-Policy: same-origin`: nothing to other sites. A page whose forms check `Origin`
/// needs it: under `no-referrer` browsers send `Origin: null` even on same-origin form posts.
pub const SAME_ORIGIN: HeaderValue = HeaderValue::from_static("same-origin");

/// `router` with the four security headers on every response (its fallback's included), each
/// replacing whatever a handler set: `csp`, `nosniff`, `DENY` and `referrer_policy`.
pub fn security_headers<S>(
    router: Router<S>,
    csp: HeaderValue,
    referrer_policy: HeaderValue,
) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    router
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            csp,
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            referrer_policy,
        ))
}

/// `Cache-Control: no-store` on every response, replacing what a handler set: for answers that
/// depend on a session or a token.
pub fn no_store() -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::overriding(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))
}

/// `Cache-Control: no-store` on every response whose handler set no `Cache-Control` of its own
/// (one that serves the same bytes to everyone, such as a stylesheet, chooses otherwise).
pub fn no_store_unless_set() -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::if_not_present(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use axum::routing::get;
    use tower::ServiceExt;

    const CSP: &str = "default-src 'none'";

    fn app() -> Router {
        let router = Router::new()
            .route("/", get(|| async { "hello" }))
            .route(
                "/cached",
                get(|| async {
                    (
                        [
                            (header::CACHE_CONTROL, "max-age=60"),
                            (header::X_FRAME_OPTIONS, "SAMEORIGIN"),
                        ],
                        "same for everyone",
                    )
                }),
            )
            .layer(no_store_unless_set());
        security_headers(router, HeaderValue::from_static(CSP), NO_REFERRER)
    }

    async fn get_headers(app: Router, path: &str) -> (StatusCode, axum::http::HeaderMap) {
        let response = app
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        (response.status(), response.headers().clone())
    }

    #[tokio::test]
    async fn every_response_carries_the_four_headers_even_a_404() {
        for path in ["/", "/cached", "/no/such/page"] {
            let (_, headers) = get_headers(app(), path).await;
            assert_eq!(headers[header::CONTENT_SECURITY_POLICY], CSP, "{path}");
            assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{path}");
            assert_eq!(
                headers[header::X_FRAME_OPTIONS],
                "DENY",
                "{path}: overridden"
            );
            assert_eq!(headers[header::REFERRER_POLICY], "no-referrer", "{path}");
            assert_eq!(headers.get_all(header::X_FRAME_OPTIONS).iter().count(), 1);
        }
    }

    #[tokio::test]
    async fn no_store_is_a_default_or_an_override() {
        assert_eq!(
            get_headers(app(), "/").await.1[header::CACHE_CONTROL],
            "no-store"
        );
        assert_eq!(
            get_headers(app(), "/cached").await.1[header::CACHE_CONTROL],
            "max-age=60",
            "a handler's own choice is kept"
        );
        let forced = app().layer(no_store());
        assert_eq!(
            get_headers(forced, "/cached").await.1[header::CACHE_CONTROL],
            "no-store"
        );
    }
}
