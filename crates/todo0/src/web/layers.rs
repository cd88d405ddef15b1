//! What every response passes through: the failure log (each failure logged once, here, with
//! its route) and its page form for browsers, and the security headers (tower-http layers from
//! [`httpserve::headers`]): a strict CSP with no scripts and only the app's own stylesheet, no
//! framing, no sniffing, no referrer, and `Cache-Control: no-store` on everything that does not
//! set its own (only the stylesheet does), so that no page or API answer with someone's todos is
//! kept by the browser or a proxy: after logout, Back or a restored tab asks the app again and
//! gets the "Log in" page.

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use httpserve::headers;

use super::AppState;
use super::error::ErrorReport;
use super::extract::Via;
use super::html;

/// The Content-Security-Policy: nothing but the app's own stylesheet; forms post to the app itself (and
/// the logout form is redirected on to the IdP's end-session endpoint, whose origin must be
/// allowed too, or browsers that apply `form-action` to redirects would stop it there).
pub(crate) fn content_security_policy(end_session_origin: Option<&str>) -> HeaderValue {
    let form_action = match end_session_origin {
        Some(origin) => format!("'self' {origin}"),
        None => "'self'".to_owned(),
    };
    let policy = format!(
        "default-src 'none'; style-src 'self'; form-action {form_action}; frame-ancestors 'none'; base-uri 'none'"
    );
    HeaderValue::from_str(&policy).unwrap_or_else(|_| {
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        )
    })
}

/// Whether the request is a browser's: a form submission, or a navigation asking for HTML.
fn wants_page(request: &Request) -> bool {
    Via::of(request.headers()) == Via::Form
        || request
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/html"))
}

/// Logs failures once and shows them as pages to browsers.
pub(crate) async fn finish(request: Request, next: Next) -> Response {
    let page = wants_page(&request);
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let mut response = next.run(request).await;
    if let Some(report) = response.extensions_mut().remove::<ErrorReport>() {
        let status = report.status.as_u16();
        if report.status.is_server_error() {
            tracing::warn!(%method, path, status, message = %report.message, "request failed");
        } else {
            tracing::info!(%method, path, status, message = %report.message, "request refused");
        }
        if page {
            let reason = report.status.canonical_reason().unwrap_or("Error");
            let mut rendered = (
                report.status,
                Html(html::error_page(status, reason, &report.message)),
            )
                .into_response();
            for name in [header::SET_COOKIE, header::WWW_AUTHENTICATE] {
                for value in response.headers().get_all(&name) {
                    rendered.headers_mut().append(name.clone(), value.clone());
                }
            }
            response = rendered;
        }
    }
    response
}

/// The security headers, as tower-http layers around everything (the failure pages above
/// included): this app's CSP, `nosniff`, `DENY` and `no-referrer` on every response, and
/// `Cache-Control: no-store` on every response that does not set its own. Pages, API answers,
/// redirects and errors all depend on the session or the token; only a handler that serves the
/// same bytes to everyone (the stylesheet) chooses otherwise.
pub(crate) fn security_headers(router: Router<AppState>, csp: HeaderValue) -> Router<AppState> {
    let router = router.layer(headers::no_store_unless_set());
    headers::security_headers(router, csp, headers::NO_REFERRER)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_allows_no_scripts_only_our_stylesheet_and_only_the_idp_as_a_form_target() {
        let csp = content_security_policy(Some("https://example.okta.com"));
        let csp = csp.to_str().unwrap();
        assert!(csp.starts_with("default-src 'none'; style-src 'self';"));
        assert!(csp.contains("form-action 'self' https://example.okta.com;"));
        assert!(csp.contains("frame-ancestors 'none'"));
        assert!(!csp.contains("script-src"));
        assert!(!csp.contains("unsafe-inline"));
    }
}
