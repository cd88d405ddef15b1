//! The stylesheet, embedded in the binary and served by the app itself (no CDN, no build step),
//! so the CSP in [`super::layers`] can say `style-src 'self'` and nothing inline. It holds no
//! personal data, so it may be cached, but is revalidated (`no-cache`) so a new build's look
//! arrives at once; every other response is `no-store`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

const STYLESHEET: &str = include_str!("../../assets/todo0.css");

/// `GET /assets/todo0.css`.
pub(crate) async fn get_stylesheet() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/css; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        STYLESHEET,
    )
        .into_response()
}

/// `GET /favicon.ico`: none (the CSP allows no images), answered without a 404 in the log.
pub(crate) async fn get_favicon() -> StatusCode {
    StatusCode::NO_CONTENT
}
