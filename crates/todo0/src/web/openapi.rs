//! `GET /openapi.json`: an OpenAPI 3.1 description of the REST API. The schemas are generated
//! by `schemars` (JSON Schema 2020-12, OpenAPI 3.1's dialect) from the very types the handlers
//! deserialize and serialize, and the query parameters from [`ListQuery`]'s fields, so bodies
//! cannot drift from the document; an integration test requests every documented operation to
//! keep the paths honest. Each operation's bearer scopes come from the configured
//! [`ScopePolicy`], the same one the handlers enforce.

use schemars::generate::SchemaSettings;
use serde_json::{Value, json};

use super::api::{ListQuery, NewTodo, SessionInfo, TodoPatch};
use super::error::ErrorBody;
use super::extract::CSRF_HEADER;
use super::session::SESSION_COOKIE;
use crate::domain::{MAX_TITLE_CHARS, Todo};
use crate::mcp::scopes::{Action, Need, ScopePolicy};

/// The document, for `policy`.
pub(crate) fn document(policy: ScopePolicy) -> Value {
    let mut generator = SchemaSettings::draft2020_12()
        .with(|s| s.definitions_path = "/components/schemas".into())
        .into_generator();
    let todo = Value::from(generator.subschema_for::<Todo>());
    let new_todo = Value::from(generator.subschema_for::<NewTodo>());
    let patch = Value::from(generator.subschema_for::<TodoPatch>());
    let session = Value::from(generator.subschema_for::<SessionInfo>());
    let error = Value::from(generator.subschema_for::<ErrorBody>());
    let schemas = generator.take_definitions(true);

    let errors = Errors(&error);
    let id = json!({"name": "id", "in": "path", "required": true, "description": "The todo's id.",
        "schema": {"type": "integer", "format": "int64", "minimum": 1}});
    let csrf = json!({"name": CSRF_HEADER, "in": "header", "required": false,
        "description": "Required when authenticating with the session cookie: the `csrf_token` from `GET /session`.",
        "schema": {"type": "string"}});
    let body = |schema: &Value| {
        json!({"required": true, "content": {
            "application/json": {"schema": schema},
            "application/x-www-form-urlencoded": {"schema": schema,
                "description": "The page's forms also send `csrf_token`; they are answered with 303 See Other to `/`."}
        }})
    };
    let read = security(policy.need(Action::Read));
    let manage = security(policy.need(Action::Manage));
    let delete = security(policy.need(Action::Delete));

    let list = json!({
        "operationId": "listTodos", "summary": "List the caller's todos, oldest first.",
        "security": read, "parameters": query_parameters(),
        "responses": errors.with(&[400, 401, 403, 503], json!({"200": ok("The todos.", &json!({"type": "array", "items": todo}))}))
    });
    let create = json!({
        "operationId": "createTodo", "summary": format!("Create a todo (title trimmed, 1–{MAX_TITLE_CHARS} characters)."),
        "security": manage, "parameters": [csrf], "requestBody": body(&new_todo),
        "responses": errors.with(&[400, 401, 403, 413, 415, 503], json!({"201": ok("The new todo; `Location` names it.", &todo)}))
    });
    let get_one = json!({
        "operationId": "getTodo", "summary": "One todo.", "security": read, "parameters": [id],
        "responses": errors.with(&[401, 403, 404, 503], json!({"200": ok("The todo.", &todo)}))
    });
    let update = json!({
        "operationId": "updateTodo", "summary": "Change the title and/or completion (at least one).",
        "security": manage, "parameters": [id, csrf],
        "requestBody": {"required": true, "content": {"application/json": {"schema": patch}}},
        "responses": errors.with(&[400, 401, 403, 404, 413, 415, 503], json!({"200": ok("The todo after the change.", &todo)}))
    });
    let remove = |operation_id: &str| {
        json!({
            "operationId": operation_id, "summary": "Delete a todo.", "security": delete, "parameters": [id, csrf],
            "responses": errors.with(&[401, 403, 404, 503], json!({"204": {"description": "Deleted."}}))
        })
    };
    let toggle = json!({
        "operationId": "toggleTodo", "summary": "Flip a todo between done and not done.",
        "security": manage, "parameters": [id, csrf],
        "responses": errors.with(&[401, 403, 404, 503], json!({"200": ok("The todo after the change.", &todo)}))
    });
    let get_session = json!({
        "operationId": "getSession", "summary": "The signed-in person and the CSRF token (session cookie only).",
        "security": [{"session": []}],
        "responses": errors.with(&[401], json!({"200": ok("The session.", &session)}))
    });

    json!({
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {
            "title": "todo0 REST API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Per-user todos: the same rows the todo0 MCP server's tools show. Authenticate with an access token for the todo0 resource (the MCP server's issuer and audience; scopes as its tools need) or with the web app's session cookie plus the `X-CSRF-Token` header for changes."
        },
        "paths": {
            "/todos": {"get": list, "post": create},
            "/todos/{id}": {"get": get_one, "patch": update, "delete": remove("deleteTodo")},
            "/todos/{id}/complete": {"post": toggle},
            "/todos/{id}/delete": {"post": remove("deleteTodoByPost")},
            "/session": {"get": get_session}
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                    "description": "An access token from the todo0 authorization server (e.g. by Cross-App Access / ID-JAG), audience = the todo0 MCP resource."},
                "session": {"type": "apiKey", "in": "cookie", "name": SESSION_COOKIE,
                    "description": "The web app's session cookie, set by logging in at `/login`."}
            }
        }
    })
}

/// The security requirements: alternatives (OpenAPI 3.1 §4.8.30), so a bearer token with any
/// one accepted scope, or the session cookie.
fn security(need: Need) -> Value {
    let mut alternatives: Vec<Value> = need
        .accepted()
        .map(|scope| json!({"bearer": [scope]}))
        .collect();
    alternatives.push(json!({"session": []}));
    Value::Array(alternatives)
}

fn ok(description: &str, schema: &Value) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": schema}}})
}

/// The error responses, all with the `ErrorBody` schema.
struct Errors<'a>(&'a Value);

impl Errors<'_> {
    fn with(&self, statuses: &[u16], mut responses: Value) -> Value {
        for status in statuses {
            let description = match status {
                400 => "Invalid input.",
                401 => "No or invalid credentials (`WWW-Authenticate: Bearer` challenge).",
                403 => {
                    "The token lacks the scope (`insufficient_scope` challenge), or the CSRF token is missing or wrong."
                }
                404 => "No such todo for this user.",
                413 => "The body is over 64 KiB.",
                415 => "The body is not JSON.",
                _ => "The store or the authorization server is unavailable.",
            };
            if let Some(map) = responses.as_object_mut() {
                map.insert(status.to_string(), ok(description, self.0));
            }
        }
        responses
    }
}

/// `GET /todos`' parameters, one per field of [`ListQuery`].
fn query_parameters() -> Value {
    let schema = Value::from(schemars::schema_for!(ListQuery));
    let properties = schema
        .get("properties")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let parameters: Vec<Value> = properties
        .into_iter()
        .map(|(name, mut property)| {
            let description = property
                .as_object_mut()
                .and_then(|p| p.remove("description"))
                .unwrap_or(Value::Null);
            json!({"name": name, "in": "query", "required": false, "description": description,
                "schema": without_null(property)})
        })
        .collect();
    Value::Array(parameters)
}

/// A query parameter is absent rather than null: `{"type": ["boolean", "null"], "default": null}`
/// becomes `{"type": "boolean"}`.
fn without_null(mut schema: Value) -> Value {
    if let Some(object) = schema.as_object_mut() {
        object.remove("default");
        if let Some(Value::Array(types)) = object.get("type") {
            let kept: Vec<Value> = types.iter().filter(|t| *t != "null").cloned().collect();
            let single = match kept.as_slice() {
                [one] => one.clone(),
                _ => Value::Array(kept),
            };
            object.insert("type".into(), single);
        }
    }
    schema
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_openapi_3_1_with_every_schema_it_references() {
        let document = document(ScopePolicy::LeastPrivilege);
        assert_eq!(document["openapi"], "3.1.0");
        let text = document.to_string();
        for name in ["Todo", "NewTodo", "TodoPatch", "SessionInfo", "ErrorBody"] {
            assert!(
                document["components"]["schemas"][name].is_object(),
                "{name} missing"
            );
            assert!(text.contains(&format!("#/components/schemas/{name}")));
        }
        assert!(
            !text.contains("$defs"),
            "no dangling draft-local references"
        );
        let parameters = &document["paths"]["/todos"]["get"]["parameters"];
        assert_eq!(parameters[0]["name"], "completed");
        assert_eq!(parameters[0]["schema"]["type"], "boolean");
        assert_eq!(parameters[1]["name"], "search");
        assert_eq!(
            document["paths"]["/todos/{id}"]["delete"]["security"][0]["bearer"][0],
            "mcp:tools:delete"
        );
    }

    #[test]
    fn the_delete_operations_document_the_scopes_the_policy_accepts() {
        let cases = [
            (
                ScopePolicy::LeastPrivilege,
                json!([{"bearer": ["mcp:tools:delete"]}, {"session": []}]),
            ),
            (
                ScopePolicy::SampleCompatible,
                json!([{"bearer": ["mcp:tools:manage"]}, {"bearer": ["mcp:tools:delete"]}, {"session": []}]),
            ),
        ];
        for (policy, expected) in cases {
            let document = document(policy);
            for (path, method) in [("/todos/{id}", "delete"), ("/todos/{id}/delete", "post")] {
                assert_eq!(
                    document["paths"][path][method]["security"], expected,
                    "{policy} {method} {path}"
                );
            }
            assert_eq!(
                document["paths"]["/todos"]["post"]["security"],
                json!([{"bearer": ["mcp:tools:manage"]}, {"session": []}]),
                "{policy}: only deleting changes"
            );
        }
    }
}
