//! The management API's HTTP plumbing: the `SSWS` admin principal, JSON bodies read into typed
//! requests with Okta's error bodies, path ids checked before use, and list pages with
//! `Link: <…>; rel="next"` (cursor `after` = the last id of the page, `limit` 1–200, default 20).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{AdminError, AdminService};
use crate::state::Idp;

/// The largest page.
const MAX_LIMIT: usize = 200;
/// The page size when `limit` is absent.
const DEFAULT_LIMIT: usize = 20;

/// A request authenticated with the admin token: authorise on the handler's first line by
/// taking this argument.
pub(crate) struct Admin(pub(crate) Arc<AdminService>);

impl FromRequestParts<Idp> for Admin {
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, idp: &Idp) -> Result<Self, AdminError> {
        let service = idp.admin().ok_or(AdminError::Unauthenticated)?;
        if is_admin_request(service, &parts.headers) {
            Ok(Self(service.clone()))
        } else {
            Err(AdminError::Unauthenticated)
        }
    }
}

/// Whether the request carries `Authorization: SSWS <the admin token>`.
pub(crate) fn is_admin_request(service: &AdminService, headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("SSWS "))
        .is_some_and(|presented| service.is_admin_token(presented.trim()))
}

/// A JSON body (capped by the router's body limit), as `T`.
pub(crate) struct Body<T>(pub(crate) T);

impl<T: DeserializeOwned> FromRequest<Idp> for Body<T> {
    type Rejection = AdminError;

    async fn from_request(request: Request, idp: &Idp) -> Result<Self, AdminError> {
        let bytes = Bytes::from_request(request, idp)
            .await
            .map_err(|e| AdminError::Malformed(e.body_text()))?;
        serde_json::from_slice(&bytes)
            .map(Body)
            .map_err(|e| AdminError::Malformed(e.to_string()))
    }
}

/// `id` when it may be an id, else 404 for `kind`.
pub(crate) fn checked<'a>(id: &'a str, kind: &str) -> Result<&'a str, AdminError> {
    if super::ids::is_valid_id(id) {
        Ok(id)
    } else {
        Err(AdminError::not_found(kind))
    }
}

/// `limit`, `after` and `q` of a list request.
pub(crate) struct ListQuery {
    pub(crate) q: Option<String>,
    limit: usize,
    after: Option<String>,
    path: String,
}

impl<S: Send + Sync> FromRequestParts<S> for ListQuery {
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, AdminError> {
        let mut query = Self {
            q: None,
            limit: DEFAULT_LIMIT,
            after: None,
            // Inside a nested router `uri` lost its prefix; the link needs the whole path.
            path: parts
                .extensions
                .get::<axum::extract::OriginalUri>()
                .map_or_else(|| parts.uri.path().to_owned(), |u| u.0.path().to_owned()),
        };
        let raw = parts.uri.query().unwrap_or("");
        for (name, value) in url::form_urlencoded::parse(raw.as_bytes()) {
            match &*name {
                "q" => query.q = Some(value.into_owned()).filter(|q| !q.is_empty()),
                "after" => query.after = Some(value.into_owned()).filter(|a| !a.is_empty()),
                "limit" => {
                    query.limit = value
                        .parse::<usize>()
                        .ok()
                        .filter(|l| (1..=MAX_LIMIT).contains(l))
                        .ok_or_else(|| {
                            AdminError::invalid(
                                "limit",
                                format!("limit: must be a number from 1 to {MAX_LIMIT}"),
                            )
                        })?;
                }
                _ => {}
            }
        }
        Ok(query)
    }
}

impl ListQuery {
    /// Whether `text` starts with `q` (case-insensitive), or there is no `q`.
    pub(crate) fn matches(&self, text: &str) -> bool {
        self.q
            .as_deref()
            .is_none_or(|q| text.to_lowercase().starts_with(&q.to_lowercase()))
    }

    /// One page of `items` (id, rendered), with `Link` headers for `self` and `next`.
    pub(crate) fn page(&self, issuer: &str, items: Vec<(String, Value)>) -> Response {
        let start = match &self.after {
            None => 0,
            Some(after) => items
                .iter()
                .position(|(id, _)| id == after)
                .map_or(items.len(), |i| i + 1),
        };
        let rest = items.len().saturating_sub(start);
        let page: Vec<(String, Value)> = items.into_iter().skip(start).take(self.limit).collect();
        let link = |after: Option<&str>| {
            let mut url = format!("{issuer}{}?limit={}", self.path, self.limit);
            if let Some(after) = after {
                url.push_str("&after=");
                url.extend(url::form_urlencoded::byte_serialize(after.as_bytes()));
            }
            if let Some(q) = &self.q {
                url.push_str("&q=");
                url.extend(url::form_urlencoded::byte_serialize(q.as_bytes()));
            }
            url
        };
        let mut links = vec![format!("<{}>; rel=\"self\"", link(self.after.as_deref()))];
        if rest > self.limit
            && let Some((last, _)) = page.last()
        {
            links.push(format!("<{}>; rel=\"next\"", link(Some(last))));
        }
        let body: Vec<Value> = page.into_iter().map(|(_, v)| v).collect();
        let mut response = (StatusCode::OK, Json(body)).into_response();
        for value in links {
            if let Ok(value) = HeaderValue::from_str(&value) {
                response.headers_mut().append(header::LINK, value);
            }
        }
        response
    }
}

/// `{"href": …}` for `_links`.
pub(crate) fn href(url: String) -> Value {
    serde_json::json!({ "href": url })
}

/// Removes the items `is_it` picks; `Err(missing)` when there is none (nothing changes): the
/// `DELETE` of a child resource (a scope, policy, rule, key, assignment, trusted origin).
pub(crate) fn remove_where<T>(
    items: &mut Vec<T>,
    is_it: impl Fn(&T) -> bool,
    missing: AdminError,
) -> Result<(), AdminError> {
    let before = items.len();
    items.retain(|item| !is_it(item));
    if items.len() == before {
        Err(missing)
    } else {
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    fn query(uri: &str) -> ListQuery {
        let (mut parts, ()) = axum::http::Request::builder()
            .uri(uri)
            .body(())
            .unwrap()
            .into_parts();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(ListQuery::from_request_parts(&mut parts, &()))
            .map_err(|e| e.to_string())
            .unwrap()
    }

    fn links(response: &Response) -> Vec<String> {
        response
            .headers()
            .get_all(header::LINK)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn a_page_links_the_next_one_until_the_last() {
        let items = || {
            (0..3)
                .map(|i| (format!("id{i}"), json!(i)))
                .collect::<Vec<_>>()
        };
        let first = query("/api/v1/x?limit=2&q=a%20b").page("http://o", items());
        assert_eq!(
            links(&first),
            [
                "<http://o/api/v1/x?limit=2&q=a+b>; rel=\"self\"",
                "<http://o/api/v1/x?limit=2&after=id1&q=a+b>; rel=\"next\"",
            ]
        );
        let last = query("/api/v1/x?limit=2&after=id1").page("http://o", items());
        assert_eq!(links(&last).len(), 1, "no next link on the last page");
        let unknown = query("/api/v1/x?after=gone").page("http://o", items());
        assert_eq!(links(&unknown).len(), 1);
        assert!(query("/x?q=AB").matches("abc") && !query("/x?q=b").matches("abc"));
    }
}
