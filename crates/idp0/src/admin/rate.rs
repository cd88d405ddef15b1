//! Okta's rate limit, simply: a fixed one-minute window over the admin's management API requests,
//! and another over requests without the admin token (so guessing the token is bounded too,
//! without using up the admin's quota). Every answer carries Okta's
//! `X-Rate-Limit-Limit`, `X-Rate-Limit-Remaining` and `X-Rate-Limit-Reset` (epoch seconds); past
//! the limit the answer is 429 E0000047 until the window resets.

use std::sync::Mutex;

use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AdminError;
use crate::state::Idp;

/// Requests per minute (Okta's limits are per endpoint family and org; 600 is in their range).
pub(crate) const LIMIT_PER_MINUTE: u32 = 600;
const WINDOW_SECONDS: i64 = 60;

/// Where a request stands in the current window.
#[derive(Debug, Clone, Copy)]
pub struct RateWindow {
    limit: u32,
    remaining: u32,
    reset: i64,
}

impl RateWindow {
    /// Okta's three headers.
    pub(crate) fn add_headers(&self, response: &mut Response) {
        let headers = response.headers_mut();
        for (name, value) in [
            ("x-rate-limit-limit", i64::from(self.limit)),
            ("x-rate-limit-remaining", i64::from(self.remaining)),
            ("x-rate-limit-reset", self.reset),
        ] {
            headers.insert(name, HeaderValue::from(value));
        }
    }
}

/// A fixed-window counter.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    limit: u32,
    /// (window start, requests in it).
    window: Mutex<(i64, u32)>,
}

impl RateLimiter {
    pub(crate) fn new(limit: u32) -> Self {
        Self {
            limit,
            window: Mutex::new((i64::MIN, 0)),
        }
    }

    /// Counts a request at `now`: `Ok` within the limit, `Err` past it.
    pub(crate) fn take(&self, now: i64) -> Result<RateWindow, RateWindow> {
        let mut window = match self.window.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if now >= window.0.saturating_add(WINDOW_SECONDS) {
            *window = (now, 0);
        }
        let reset = window.0 + WINDOW_SECONDS;
        if window.1 >= self.limit {
            return Err(RateWindow {
                limit: self.limit,
                remaining: 0,
                reset,
            });
        }
        window.1 += 1;
        Ok(RateWindow {
            limit: self.limit,
            remaining: self.limit - window.1,
            reset,
        })
    }
}

/// The middleware in front of the management API.
pub(crate) async fn limit(State(idp): State<Idp>, request: Request, next: Next) -> Response {
    let Some(admin) = idp.admin() else {
        return next.run(request).await;
    };
    let limiter = if super::wire::is_admin_request(admin, request.headers()) {
        &admin.rate
    } else {
        &admin.rate_unauthenticated
    };
    match limiter.take(idp.clock.now()) {
        Ok(window) => {
            let mut response = next.run(request).await;
            window.add_headers(&mut response);
            response
        }
        Err(window) => AdminError::RateLimited(window).into_response(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_window_refuses_past_the_limit_until_it_resets() {
        let limiter = RateLimiter::new(2);
        assert_eq!(limiter.take(1000).unwrap().remaining, 1);
        assert_eq!(limiter.take(1010).unwrap().remaining, 0);
        let refused = limiter.take(1059).unwrap_err();
        assert_eq!(refused.reset, 1060);
        assert_eq!(limiter.take(1060).unwrap().remaining, 1);
    }
}
