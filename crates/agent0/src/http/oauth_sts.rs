//! The sample's brokered-consent endpoints (OKTA.md §2): `POST /api/oauth-sts/exchange`
//! `{"resource"}` runs the brokered exchange for the logged-in person and answers
//! `{"status":"success"}`, `{"status":"interaction_required","interaction_uri","error_description"}`,
//! `{"status":"interaction_pending"}` (the draft's polling answer) or `{"status":"error","error"}`;
//! `GET /api/oauth-sts/status?resource=` answers `{"configured","connected","resource"}`. The
//! ISV token itself never leaves agent0.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiError;
use crate::config::AuthStrategy;
use crate::tokens::{StsTarget, TokenError};

/// The exchange request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExchangeRequest {
    resource: String,
}

/// The status query.
#[derive(Debug, Deserialize)]
pub(crate) struct StatusQuery {
    resource: Option<String>,
}

/// The enabled brokered connection (name, label) whose resource indicator is `resource`.
fn brokered<'a>(app: &'a AppState, resource: &str) -> Option<(&'a str, &'a str, &'a str)> {
    app.agent
        .hub()
        .servers()
        .iter()
        .find_map(|s| match &s.auth {
            AuthStrategy::OauthSts { resource: r, .. } if r == resource => {
                Some((s.name.as_str(), s.label.as_str(), r.as_str()))
            }
            _ => None,
        })
}

/// `POST /api/oauth-sts/exchange`.
pub(crate) async fn post_exchange(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<ExchangeRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let session = app.require_csrf(&headers).await?;
    let Json(request) = body.map_err(|e| ApiError::BadRequest {
        status: StatusCode::BAD_REQUEST,
        message: format!(
            "the body must be {{\"resource\": \"…\"}} ({})",
            e.body_text()
        ),
    })?;
    let Some((connection, label, resource)) = brokered(&app, &request.resource) else {
        return Ok((
            StatusCode::BAD_REQUEST,
            Json(json!({
                "status": "error",
                "error": "that resource is not a brokered connection of this agent",
            })),
        ));
    };
    let target = StsTarget {
        connection,
        resource,
    };
    let outcome = app
        .agent
        .hub()
        .broker()
        .brokered_token(&session.principal, target)
        .await;
    let body = match outcome {
        Ok(_) => json!({"status": "success"}),
        Err(TokenError::InteractionRequired {
            interaction_uri, ..
        }) => json!({
            "status": "interaction_required",
            "interaction_uri": interaction_uri,
            "error_description": format!("{label} needs your consent first"),
        }),
        Err(TokenError::ConsentPending { .. }) => json!({"status": "interaction_pending"}),
        Err(TokenError::LoginExpired) => return Err(ApiError::LoginExpired),
        Err(e) => {
            tracing::info!(connection, error = %e, "brokered exchange refused");
            json!({"status": "error", "error": crate::failure::token(&e, label)})
        }
    };
    Ok((StatusCode::OK, Json(body)))
}

/// `GET /api/oauth-sts/status?resource=`.
pub(crate) async fn get_status(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<StatusQuery>,
) -> Result<Json<Value>, ApiError> {
    let session = app.require_session(&headers).await?;
    // Without `resource`: the application connection's (the sample's single one).
    let resource = query.resource.or_else(|| {
        app.brokered
            .application
            .as_ref()
            .map(|a| a.resource.clone())
    });
    let Some(resource) = resource else {
        return Ok(Json(
            json!({"configured": false, "connected": false, "resource": Value::Null}),
        ));
    };
    let connected = match brokered(&app, &resource) {
        Some((connection, _, resource)) => {
            let target = StsTarget {
                connection,
                resource,
            };
            Some(
                app.agent
                    .hub()
                    .broker()
                    .has_brokered_token(&session.principal, target)
                    .await,
            )
        }
        None => None,
    };
    Ok(Json(json!({
        "configured": connected.is_some(),
        "connected": connected.unwrap_or(false),
        "resource": resource,
    })))
}
