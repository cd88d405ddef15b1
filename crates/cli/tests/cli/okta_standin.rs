//! A stand-in Okta management API on 127.0.0.1:0 for `secure-agent okta`: Okta's documented
//! shapes (OKTA.md §4) — SSWS authentication with a 401 error body, `202` + `Location`
//! operations polled `IN_PROGRESS` then `COMPLETED`, lists paginated two items a page with
//! `Link: <…>; rel="next"`, Okta's error bodies with `errorCauses`, and faults on demand (one
//! 429 with `X-Rate-Limit-Reset`, one 500 at the k-th POST, a `FAILED` operation, a failing
//! DELETE). Every request is recorded.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

pub(crate) const TOKEN: &str = "00-stand-in-api-token-SECRET";
const PAGE: usize = 2;
const COLLECTIONS: [&str; 11] = [
    "authorizationServers",
    "scopes",
    "apps",
    "users",
    "ai-agents",
    "jwks",
    "connections",
    "policies",
    "rules",
    "trustedOrigins",
    "secrets",
];

#[derive(Debug, Clone)]
pub(crate) struct Recorded {
    pub(crate) method: String,
    /// Path and query.
    pub(crate) path: String,
    pub(crate) authorization: Option<String>,
    pub(crate) accept: Option<String>,
    pub(crate) body: Value,
}

#[derive(Default)]
pub(crate) struct Faults {
    /// Answer the k-th POST (1-based) with a 500, once.
    pub(crate) fail_post: Option<usize>,
    /// Carry out the k-th POST but answer it with a 500 (the answer is lost), once.
    pub(crate) lose_post: Option<usize>,
    /// Answer the first GET of this path with a 429.
    pub(crate) rate_limit: Option<String>,
    /// Operations end FAILED.
    pub(crate) fail_operations: bool,
    /// Operations stay IN_PROGRESS.
    pub(crate) stall_operations: bool,
    /// DELETEs of exactly this path answer 500 (each time).
    pub(crate) fail_delete: Option<String>,
    /// A hostile org: `Link: rel="next"` and operation `Location`s name this other origin.
    pub(crate) foreign_links: Option<String>,
}

#[derive(Default)]
pub(crate) struct Inner {
    pub(crate) requests: Vec<Recorded>,
    pub(crate) resources: BTreeMap<String, Vec<Value>>,
    pub(crate) faults: Faults,
    next_id: u64,
    posts: usize,
    /// Operation id → (polls so far, result, on completion: (collection, id, field, value)).
    ops: BTreeMap<String, Operation>,
    secrets: BTreeMap<String, String>,
}

/// What an operation does when it completes: change (or, with `Null`, delete) `collection/id`.
type OnCompletion = Option<(String, String, Value)>;
/// An operation: polls so far, its `resource`, what completion does.
type Operation = (u32, Value, OnCompletion);

#[derive(Clone)]
pub(crate) struct StandIn {
    pub(crate) inner: Arc<Mutex<Inner>>,
    pub(crate) base: String,
}

impl StandIn {
    pub(crate) async fn start() -> Self {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let app = Router::new()
            .fallback(handle)
            .with_state((inner.clone(), base.clone()));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { inner, base }
    }

    pub(crate) fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        f(&mut self.inner.lock().unwrap())
    }

    pub(crate) fn requests(&self) -> Vec<Recorded> {
        self.with(|i| i.requests.clone())
    }

    pub(crate) fn posts(&self) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == "POST")
            .collect()
    }

    /// Every resource still held, as `collection/id`.
    pub(crate) fn held(&self) -> Vec<String> {
        self.with(|i| {
            i.resources
                .iter()
                .flat_map(|(c, items)| {
                    items
                        .iter()
                        .map(move |v| format!("{c}/{}", v["id"].as_str().unwrap_or("?")))
                })
                .collect()
        })
    }
}

fn okta_error(status: StatusCode, code: &str, summary: &str, causes: &[&str]) -> Response {
    let causes: Vec<Value> = causes.iter().map(|c| json!({"errorSummary": c})).collect();
    (
        status,
        axum::Json(json!({
            "errorCode": code,
            "errorSummary": summary,
            "errorLink": code,
            "errorId": "oaeStandIn",
            "errorCauses": causes,
        })),
    )
        .into_response()
}

fn not_found(path: &str) -> Response {
    okta_error(
        StatusCode::NOT_FOUND,
        "E0000007",
        &format!("Not found: Resource not found: {path} (Resource)"),
        &[],
    )
}

fn accepted(location: String) -> Response {
    let mut response = StatusCode::ACCEPTED.into_response();
    response
        .headers_mut()
        .insert(header::LOCATION, HeaderValue::from_str(&location).unwrap());
    response
}

async fn handle(
    State((inner, base)): State<(Arc<Mutex<Inner>>, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let text = |name: header::HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let path = uri.path().to_owned();
    let path_and_query = uri
        .path_and_query()
        .map_or(path.clone(), |p| p.as_str().to_owned());
    let query: BTreeMap<String, String> =
        url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    if let Some(public) = discovery(&base, &path) {
        return public;
    }
    let mut s = inner.lock().unwrap();
    s.requests.push(Recorded {
        method: method.to_string(),
        path: path_and_query,
        authorization: text(header::AUTHORIZATION),
        accept: text(header::ACCEPT),
        body: body.clone(),
    });
    if text(header::AUTHORIZATION).as_deref() != Some(&format!("SSWS {TOKEN}")) {
        return okta_error(
            StatusCode::UNAUTHORIZED,
            "E0000011",
            "Invalid token provided",
            &[],
        );
    }
    if method == Method::GET && s.faults.rate_limit.as_deref() == Some(path.as_str()) {
        s.faults.rate_limit = None;
        let reset = protocol::clock::system().now();
        let mut response = okta_error(
            StatusCode::TOO_MANY_REQUESTS,
            "E0000047",
            "API call exceeded rate limit due to too many requests.",
            &[],
        );
        for (name, value) in [
            ("x-rate-limit-limit", "50".to_owned()),
            ("x-rate-limit-remaining", "0".to_owned()),
            ("x-rate-limit-reset", reset.to_string()),
        ] {
            response
                .headers_mut()
                .insert(name, HeaderValue::from_str(&value).unwrap());
        }
        return response;
    }
    if method == Method::POST {
        s.posts += 1;
        if s.faults.fail_post == Some(s.posts) {
            s.faults.fail_post = None;
            s.posts -= 1;
            return okta_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "E0000009",
                "Internal Server Error",
                &["stand-in fault"],
            );
        }
    }
    if method == Method::DELETE && s.faults.fail_delete.as_deref().is_some_and(|p| path == p) {
        return okta_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "E0000009",
            "Internal Server Error",
            &["stand-in delete fault"],
        );
    }
    let response = route(&mut s, &base, &method, &path, &query, body);
    if method == Method::POST && s.faults.lose_post == Some(s.posts) {
        s.faults.lose_post = None;
        return okta_error(
            StatusCode::BAD_GATEWAY,
            "E0000009",
            "Internal Server Error",
            &["stand-in lost the answer"],
        );
    }
    response
}

/// The org's and each custom authorization server's discovery documents and keys (public: no
/// API token), so the services can start from the files bootstrap wrote.
fn discovery(base: &str, path: &str) -> Option<Response> {
    static KEY: std::sync::OnceLock<protocol::keys::SigningKey> = std::sync::OnceLock::new();
    let key = KEY.get_or_init(|| {
        protocol::keys::SigningKey::generate(protocol::keys::KeyKind::Rsa).unwrap()
    });
    if path.ends_with("/v1/keys") {
        return Some(axum::Json(protocol::keys::jwk_set([key])).into_response());
    }
    let issuer_path = path
        .strip_suffix("/.well-known/openid-configuration")
        .or_else(|| path.strip_suffix("/.well-known/oauth-authorization-server"))
        .or_else(|| path.strip_prefix("/.well-known/oauth-authorization-server"))
        .or_else(|| (path == "/.well-known/oauth-authorization-server").then_some(""))?;
    let issuer = format!("{base}{issuer_path}");
    let endpoints = if issuer_path.is_empty() {
        format!("{base}/oauth2")
    } else {
        issuer.clone()
    };
    Some(
        axum::Json(json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{endpoints}/v1/authorize"),
            "token_endpoint": format!("{endpoints}/v1/token"),
            "jwks_uri": format!("{endpoints}/v1/keys"),
            "introspection_endpoint": format!("{endpoints}/v1/introspect"),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "grant_types_supported": ["authorization_code", "urn:ietf:params:oauth:grant-type:jwt-bearer"],
        }))
        .into_response(),
    )
}

fn new_id(s: &mut Inner, prefix: &str) -> String {
    s.next_id += 1;
    format!("{prefix}{}", s.next_id)
}

fn find(s: &Inner, collection: &str, id: &str) -> Option<Value> {
    s.resources
        .get(collection)?
        .iter()
        .find(|v| v["id"] == id)
        .cloned()
}

fn remove(s: &mut Inner, collection: &str, id: &str) -> bool {
    let Some(items) = s.resources.get_mut(collection) else {
        return false;
    };
    let before = items.len();
    items.retain(|v| v["id"] != id);
    let removed = items.len() < before;
    // What lived under the item goes with it (an authorization server's scopes and policies).
    let prefix = format!("{collection}/{id}/");
    s.resources.retain(|c, _| !c.starts_with(&prefix));
    removed
}

fn operation(
    s: &mut Inner,
    base: &str,
    absolute: bool,
    result: Value,
    then: OnCompletion,
) -> Response {
    let id = new_id(s, "op");
    s.ops.insert(id.clone(), (0, result, then));
    // Relative for creations, absolute for lifecycle calls: the client must take both.
    if let Some(foreign) = &s.faults.foreign_links {
        return accepted(format!(
            "{foreign}/workload-principals/api/v1/operations/{id}"
        ));
    }
    accepted(if absolute {
        format!("{base}/workload-principals/api/v1/operations/{id}")
    } else {
        format!("/workload-principals/api/v1/operations/{id}")
    })
}

fn route(
    s: &mut Inner,
    base: &str,
    method: &Method,
    path: &str,
    query: &BTreeMap<String, String>,
    body: Value,
) -> Response {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let json = |v: Value| axum::Json(v).into_response();
    match (method.as_str(), path) {
        ("GET", "/api/v1/users/me") => {
            return json(
                json!({"id": "00uAdmin", "status": "ACTIVE", "profile": {"login": "admin@example.com", "email": "admin@example.com"}}),
            );
        }
        ("GET", "/api/v1/org") => {
            return json(
                json!({"id": "00oOrg", "companyName": "Stand-in", "subdomain": "standin"}),
            );
        }
        ("POST", "/governance/api/v1/resource-owners") => return json(json!({"data": []})),
        _ => {}
    }
    if method == Method::GET && path.starts_with("/workload-principals/api/v1/operations/") {
        let id = segments[segments.len() - 1].to_owned();
        let failing = s.faults.fail_operations;
        let stalled = s.faults.stall_operations;
        let Some(op) = s.ops.get_mut(&id) else {
            return not_found(path);
        };
        op.0 += 1;
        if op.0 < 2 || stalled {
            return json(json!({"id": id, "status": "IN_PROGRESS"}));
        }
        if failing {
            return json(
                json!({"id": id, "status": "FAILED", "error": {"errorCode": "E0000001", "errorSummary": "Agent creation failed", "errorCauses": [{"errorSummary": "stand-in says no"}]}}),
            );
        }
        let (_, result, then) = op.clone();
        if let Some((collection, item, change)) = then
            && let Some(items) = s.resources.get_mut(&collection)
        {
            {
                for v in items.iter_mut().filter(|v| v["id"] == item.as_str()) {
                    if change.is_null() {
                        v["__deleted"] = true.into();
                    } else if let Some(object) = change.as_object() {
                        for (k, x) in object {
                            v[k] = x.clone();
                        }
                    }
                }
                let gone: Vec<String> = items
                    .iter()
                    .filter(|v| v.get("__deleted").is_some())
                    .filter_map(|v| v["id"].as_str().map(str::to_owned))
                    .collect();
                for id in gone {
                    remove(s, &collection, &id);
                }
            }
        }
        let mut done = json!({"id": id, "status": "COMPLETED"});
        if !result.is_null() {
            done["resource"] = result;
        }
        return json(done);
    }
    // Lifecycle calls.
    if method == Method::POST && segments.len() >= 3 && segments[segments.len() - 2] == "lifecycle"
    {
        let action = segments[segments.len() - 1];
        let item_path = segments[..segments.len() - 2].join("/");
        let (collection, id) = item_path.rsplit_once('/').unwrap();
        let collection = format!("/{collection}");
        if find(s, &collection, id).is_none() {
            return not_found(path);
        }
        let status = if action == "activate" {
            "ACTIVE"
        } else {
            "INACTIVE"
        };
        if collection.ends_with("/ai-agents") {
            return operation(
                s,
                base,
                true,
                json!({"id": id}),
                Some((collection, id.to_owned(), json!({"status": status}))),
            );
        }
        for v in s
            .resources
            .get_mut(&collection)
            .unwrap()
            .iter_mut()
            .filter(|v| v["id"] == id)
        {
            v["status"] = status.into();
        }
        return json(json!({}));
    }
    let last = segments[segments.len() - 1];
    let is_collection = COLLECTIONS.contains(&last);
    match method.as_str() {
        "POST" if is_collection => {
            let collection = path.to_owned();
            let mut item = body.clone();
            if collection.ends_with("/users") && collection.starts_with("/api/v1/apps/") {
                item = json!({"id": body["id"], "scope": "USER", "status": "ACTIVE"});
            } else if collection == "/workload-principals/api/v1/ai-agents" {
                let id = new_id(s, "wlp");
                item["id"] = id.clone().into();
                item["status"] = "STAGED".into();
                s.resources.entry(collection).or_default().push(item);
                return operation(s, base, false, json!({"id": id}), None);
            } else if collection.ends_with("/jwks") {
                let kid = new_id(s, "okta-kid-");
                item["id"] = kid.clone().into();
                item["kid"] = kid.into();
                item["status"] = "ACTIVE".into();
            } else {
                let prefix = match last {
                    "authorizationServers" => "aus",
                    "apps" => "0oa",
                    "policies" => "pol",
                    "rules" => "rul",
                    "trustedOrigins" => "tos",
                    "connections" => "con",
                    _ => "scp",
                };
                let id = new_id(s, prefix);
                item["id"] = id.clone().into();
                item["status"] = "ACTIVE".into();
                if last == "apps" {
                    let secret = format!("client-secret-{id}-SECRET");
                    s.secrets.insert(id.clone(), secret.clone());
                    item["credentials"]["oauthClient"]["client_id"] = format!("client-{id}").into();
                    s.resources
                        .entry(collection)
                        .or_default()
                        .push(item.clone());
                    let mut answer = item;
                    answer["credentials"]["oauthClient"]["client_secret"] = secret.into();
                    return json(answer);
                }
            }
            s.resources
                .entry(collection)
                .or_default()
                .push(item.clone());
            json(item)
        }
        "GET" if is_collection => {
            if last == "secrets" {
                let app = segments[3];
                return match s.secrets.get(app) {
                    Some(secret) => {
                        json(json!([{"id": "ocs1", "status": "ACTIVE", "client_secret": secret}]))
                    }
                    None => not_found(path),
                };
            }
            let mut items = s.resources.get(path).cloned().unwrap_or_default();
            if let Some(q) = query.get("q") {
                items.retain(|v| {
                    [&v["name"], &v["label"]]
                        .iter()
                        .any(|f| f.as_str().is_some_and(|t| t.starts_with(q.as_str())))
                });
            }
            let after: usize = query.get("after").and_then(|a| a.parse().ok()).unwrap_or(0);
            let page: Vec<Value> = items.iter().skip(after).take(PAGE).cloned().collect();
            let page = Value::Array(page);
            let body = if last == "connections" {
                json!({"data": page})
            } else {
                page
            };
            let mut response = json(body);
            if after + PAGE < items.len() {
                let next_base = s.faults.foreign_links.as_deref().unwrap_or(base);
                let mut next = url::Url::parse(&format!("{next_base}{path}")).unwrap();
                {
                    let mut pairs = next.query_pairs_mut();
                    for (k, v) in query.iter().filter(|(k, _)| *k != "after") {
                        pairs.append_pair(k, v);
                    }
                    pairs.append_pair("after", &(after + PAGE).to_string());
                }
                let link = format!("<{base}{path}>; rel=\"self\", <{next}>; rel=\"next\"");
                response
                    .headers_mut()
                    .insert(header::LINK, HeaderValue::from_str(&link).unwrap());
            }
            response
        }
        "GET" => {
            let (collection, id) = path.rsplit_once('/').unwrap();
            match find(s, collection, id) {
                Some(item) => json(item),
                None => not_found(path),
            }
        }
        "DELETE" => {
            let (collection, id) = path.rsplit_once('/').unwrap();
            let Some(item) = find(s, collection, id) else {
                return not_found(path);
            };
            if collection.ends_with("/ai-agents") {
                return operation(
                    s,
                    base,
                    true,
                    Value::Null,
                    Some((collection.to_owned(), id.to_owned(), Value::Null)),
                );
            }
            let needs_deactivation = ["/api/v1/apps", "/api/v1/authorizationServers"]
                .contains(&collection)
                || collection.ends_with("/connections");
            if needs_deactivation && item["status"] == "ACTIVE" {
                return okta_error(
                    StatusCode::FORBIDDEN,
                    "E0000056",
                    "Delete application forbidden.",
                    &["The resource must be deactivated before it is deleted."],
                );
            }
            remove(s, collection, id);
            StatusCode::NO_CONTENT.into_response()
        }
        _ => not_found(path),
    }
}
