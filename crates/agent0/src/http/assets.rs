//! The web UI, embedded in the binary (no CDN, no build step): `index.html`, `app.js`,
//! `app.css`, served with long-lived validators off and a strict CSP from [`super::finish`].

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

const INDEX_HTML: &str = include_str!("../../assets/index.html");
const APP_JS: &str = include_str!("../../assets/app.js");
const APP_CSS: &str = include_str!("../../assets/app.css");

fn asset(body: &'static str, content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response()
}

/// `GET /`: `no-store`, so neither Back nor a restored tab shows a page from the browser's
/// cache after logout (the page then asks for its session again; see `app.js`).
pub(crate) async fn get_index() -> Response {
    let mut response = asset(INDEX_HTML, "text/html; charset=utf-8");
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `GET /assets/app.js`.
pub(crate) async fn get_app_js() -> Response {
    asset(APP_JS, "text/javascript; charset=utf-8")
}

/// `GET /assets/app.css`.
pub(crate) async fn get_app_css() -> Response {
    asset(APP_CSS, "text/css; charset=utf-8")
}

/// `GET /favicon.ico`: none.
pub(crate) async fn get_favicon() -> StatusCode {
    StatusCode::NO_CONTENT
}
