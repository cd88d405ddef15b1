//! The REST handlers: authorised by the middleware (the [`Principal`] is in the extensions),
//! each calls the service and shapes GitHub's JSON.

use std::collections::HashMap;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::json;
use crate::Github0;
use crate::service::Principal;
use crate::store::repos::PullQuery;

const DOCS_REPO: &str = "https://docs.github.com/rest/repos/repos#get-a-repository";
const DOCS_PULLS: &str = "https://docs.github.com/rest/pulls/pulls#list-pull-requests";
const DOCS_PULL: &str = "https://docs.github.com/rest/pulls/pulls#get-a-pull-request";
const DOCS_LIST_COMMENTS: &str = "https://docs.github.com/rest/issues/comments#list-issue-comments";
const DOCS_CREATE_COMMENT: &str =
    "https://docs.github.com/rest/issues/comments#create-an-issue-comment";

/// Page size and page from `per_page` (default 30, at most 100) and `page` (default 1).
pub(crate) fn paging(query: &HashMap<String, String>) -> (i64, i64) {
    let per_page = query
        .get("per_page")
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(30)
        .clamp(1, 100);
    let page = query
        .get("page")
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(1)
        .clamp(1, 100_000);
    (per_page, page)
}

/// `state` (`open` default, `closed`, `all`), `sort` (`created` default, `updated`; GitHub's
/// `popularity` and `long-running` sort as `created` here) and `direction` (`desc` by default
/// for `created`, `asc` otherwise), as GitHub's list endpoint reads them.
pub(crate) fn pull_query(
    state: Option<&str>,
    sort: Option<&str>,
    direction: Option<&str>,
    per_page: i64,
    page: i64,
) -> PullQuery {
    let state = match state {
        Some("closed") => Some("closed"),
        Some("all") => None,
        _ => Some("open"),
    };
    let by_created = !matches!(sort, Some("updated"));
    let descending = match direction {
        Some("asc") => false,
        Some("desc") => true,
        _ => sort.is_none() || sort == Some("created"),
    };
    PullQuery {
        state,
        by_created,
        descending,
        per_page,
        page,
    }
}

fn number(text: &str, docs: &'static str) -> Result<i64, ApiError> {
    text.parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or(ApiError::NotFound(docs))
}

pub(crate) async fn get_user(
    State(github0): State<Github0>,
    Extension(who): Extension<Principal>,
) -> Response {
    axum::Json(json::private_user(&github0.urls(), &who.account)).into_response()
}

pub(crate) async fn get_repo(
    State(github0): State<Github0>,
    Path((owner, repo)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let (repo, open) = github0
        .get_repo(&owner, &repo)
        .await
        .map_err(|e| ApiError::from_service(e, DOCS_REPO))?;
    Ok(axum::Json(json::repo(&github0.urls(), &repo, open)).into_response())
}

pub(crate) async fn list_pulls(
    State(github0): State<Github0>,
    Path((owner, repo)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let (per_page, page) = paging(&query);
    let query = pull_query(
        query.get("state").map(String::as_str),
        query.get("sort").map(String::as_str),
        query.get("direction").map(String::as_str),
        per_page,
        page,
    );
    let (repo, pulls) = github0
        .list_pulls(&owner, &repo, query)
        .await
        .map_err(|e| ApiError::from_service(e, DOCS_PULLS))?;
    let urls = github0.urls();
    let list: Vec<_> = pulls
        .iter()
        .map(|p| json::pull(&urls, &repo, p, false))
        .collect();
    Ok(axum::Json(list).into_response())
}

pub(crate) async fn get_pull(
    State(github0): State<Github0>,
    Path((owner, repo, pull_number)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let number = number(&pull_number, DOCS_PULL)?;
    let (repo, pull) = github0
        .get_pull(&owner, &repo, number)
        .await
        .map_err(|e| ApiError::from_service(e, DOCS_PULL))?;
    Ok(axum::Json(json::pull(&github0.urls(), &repo, &pull, true)).into_response())
}

pub(crate) async fn list_comments(
    State(github0): State<Github0>,
    Path((owner, repo, issue_number)): Path<(String, String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let number = number(&issue_number, DOCS_LIST_COMMENTS)?;
    let (per_page, page) = paging(&query);
    let (repo, comments) = github0
        .list_comments(&owner, &repo, number, per_page, page)
        .await
        .map_err(|e| ApiError::from_service(e, DOCS_LIST_COMMENTS))?;
    let urls = github0.urls();
    let list: Vec<_> = comments
        .iter()
        .map(|c| json::comment(&urls, &repo, c))
        .collect();
    Ok(axum::Json(list).into_response())
}

pub(crate) async fn post_comment(
    State(github0): State<Github0>,
    Extension(who): Extension<Principal>,
    Path((owner, repo, issue_number)): Path<(String, String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let number = number(&issue_number, DOCS_CREATE_COMMENT)?;
    let value: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|_| ApiError::ProblemsParsingJson(DOCS_CREATE_COMMENT))?;
    let Some(text) = value.get("body").and_then(serde_json::Value::as_str) else {
        return Err(ApiError::FieldMissing("body", DOCS_CREATE_COMMENT));
    };
    let (repo, comment) = github0
        .add_comment(&who, &owner, &repo, number, text)
        .await
        .map_err(|e| ApiError::from_service(e, DOCS_CREATE_COMMENT))?;
    let value = json::comment(&github0.urls(), &repo, &comment);
    let mut response = (StatusCode::CREATED, axum::Json(&value)).into_response();
    if let Some(url) = value["url"].as_str()
        && let Ok(url) = HeaderValue::from_str(url)
    {
        response.headers_mut().insert(header::LOCATION, url);
    }
    Ok(response)
}
