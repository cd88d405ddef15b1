//! The MCP tools (the TypeScript sample's names): `get-todos`, `create-todo`, `update-todo`,
//! `toggle-todo`, `delete-todo`. Inputs have JSON Schemas and are validated here, so a wrong or
//! missing argument is a tool error the model can read and correct (MCP 2025-11-25, "Error
//! Handling"); not-found and invalid titles are tool errors too. Only malformed JSON-RPC and
//! unknown tools are protocol errors (rmcp answers those). Every call is audited.

use std::sync::Arc;

use rmcp::handler::server::common::{schema_for_output, schema_for_type};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolResult, ContentBlock, Implementation, JsonObject, MetaObject, ServerCapabilities,
    ServerConfig,
};
use rmcp::{
    ErrorData, ServerHandler, handler::server::common::Extension, tool, tool_handler, tool_router,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::auth::Caller;
use super::scopes::{self, Need, ScopePolicy};
use crate::domain::{Filter, Title, Todo, TodoChange, TodoError, parse_id};
use crate::store::TodoStore;

/// `get-todos` input.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetTodosArgs {
    /// Only done (true) or open (false) todos; omit for all.
    #[serde(default)]
    pub completed: Option<bool>,
    /// Only todos whose title contains this text (case-insensitive).
    #[serde(default)]
    pub search: Option<String>,
}

/// `create-todo` input.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTodoArgs {
    /// The title, 1–500 characters.
    pub title: String,
}

/// `update-todo` input.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTodoArgs {
    /// The todo's id.
    pub id: i64,
    /// A new title.
    #[serde(default)]
    pub title: Option<String>,
    /// Mark done (true) or not done (false).
    #[serde(default)]
    pub completed: Option<bool>,
}

/// `toggle-todo` / `delete-todo` input.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IdArgs {
    /// The todo's id.
    pub id: i64,
}

/// `get-todos` output.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TodoList {
    /// The todos, oldest first.
    pub todos: Vec<Todo>,
    /// How many.
    pub count: usize,
}

/// Output of the tools that change one todo.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TodoResult {
    /// The todo after the change (for delete: as it was).
    pub todo: Todo,
}

/// The tool server: one per process, cheap to clone per session (rmcp asks for one per
/// session worker; the router, every tool's schema and metadata, is shared).
#[derive(Clone)]
pub struct TodoTools {
    store: Arc<dyn TodoStore>,
    clock: Arc<dyn protocol::Clock>,
    tool_router: Arc<ToolRouter<Self>>,
}

/// A tool's `_meta`: `requiredScopes`, the scopes to request for it (what a `403` challenge
/// names to a caller holding none of the accepted ones); and, when the policy accepts more than
/// one scope for the tool, `acceptedScopeSets`, every scope set that lets it run.
fn scope_meta(need: Need) -> MetaObject {
    let mut object = JsonObject::new();
    object.insert(
        "requiredScopes".into(),
        serde_json::json!([scopes::CONNECT, need.preferred()]),
    );
    if need.has_alternatives() {
        let sets: Vec<_> = need
            .accepted()
            .map(|scope| serde_json::json!([scopes::CONNECT, scope]))
            .collect();
        object.insert("acceptedScopeSets".into(), serde_json::Value::Array(sets));
    }
    MetaObject(object)
}

/// A tool error result the model can read.
fn tool_error(message: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message.into())])
}

/// The typed arguments, or why they are invalid (said to the model as a tool error).
fn parse_args<T: DeserializeOwned>(args: JsonObject) -> Result<T, String> {
    serde_json::from_value(serde_json::Value::Object(args))
        .map_err(|e| format!("invalid arguments: {e}"))
}

fn caller(parts: &http::request::Parts) -> Result<&Caller, ErrorData> {
    // The HTTP guard always inserts the caller; its absence is a wiring bug, not bad input.
    parts
        .extensions
        .get::<Caller>()
        .ok_or_else(|| ErrorData::internal_error("unauthenticated request reached a tool", None))
}

/// A tool's result: a success's structured content, already serialized, or a tool error.
///
/// The direct `tools/call` path writes the serialized content into its reply as it is
/// ([`super::direct::reply_structured`]); through rmcp's `CallToolResult` the same content was
/// built as a `serde_json::Value` tree, printed for the text block and serialized again, a
/// quarter of the server's CPU per `get-todos` call.
pub(crate) enum Output {
    /// Structured content: a JSON object, compact, its members in the tool's order; on both
    /// paths also the text block, as it is.
    Structured(String),
    /// A tool error the model can read.
    Error(CallToolResult),
}

impl Output {
    /// As rmcp's result (the tool router's path).
    pub(crate) fn into_result(self) -> CallToolResult {
        match self {
            Self::Structured(json) => match serde_json::from_str(&json) {
                Ok(value) => {
                    // `CallToolResult::structured` with the text block as the direct path
                    // writes it: printing the `Value` would order an object's members by name
                    // unless serde_json is built with `preserve_order`.
                    let mut result = CallToolResult::success(vec![ContentBlock::text(json)]);
                    result.structured_content = Some(value);
                    result
                }
                Err(e) => tool_error(format!("could not encode the result: {e}")),
            },
            Self::Error(result) => result,
        }
    }
}

fn structured<T: Serialize>(value: &T) -> Output {
    match serde_json::to_string(value) {
        Ok(json) if json.starts_with('{') => Output::Structured(json),
        Ok(_) => Output::Error(tool_error("could not encode the result: not an object")),
        Err(e) => Output::Error(tool_error(format!("could not encode the result: {e}"))),
    }
}

fn outcome(result: Result<Output, TodoError>) -> Output {
    match result {
        Ok(output) => output,
        Err(TodoError::Unavailable(message)) => {
            tracing::warn!(error = %message, "todo store unavailable");
            Output::Error(tool_error(
                "The todo store is temporarily unavailable; please try again shortly.",
            ))
        }
        Err(e) => Output::Error(tool_error(e.to_string())),
    }
}

fn audit(caller: &Caller, tool: &str, output: &Output) {
    let outcome = match output {
        Output::Structured(_) => "ok",
        Output::Error(_) => "error",
    };
    tracing::info!(target: "todo0::audit", user = caller.owner.as_str(), client = caller.client_id.as_deref().unwrap_or("-"), tool, outcome, "tool call");
}

#[tool_router]
impl TodoTools {
    /// Tools over `store`, each advertising in its `_meta` the scopes `policy` requires for it
    /// (the guard enforces the same policy).
    pub fn new(
        store: Arc<dyn TodoStore>,
        clock: Arc<dyn protocol::Clock>,
        policy: ScopePolicy,
    ) -> Self {
        let mut tool_router = Self::tool_router();
        for route in tool_router.map.values_mut() {
            route.attr.meta = policy.tool_need(&route.attr.name).map(scope_meta);
        }
        Self {
            store,
            clock,
            tool_router: Arc::new(tool_router),
        }
    }

    /// Runs tool `name` for `caller` and audits the call; `None` when there is no such tool.
    /// Both ways in take it: rmcp's tool router (the methods below) and the MCP guard's direct
    /// `tools/call` path ([`super::direct`]).
    pub(crate) async fn call(
        &self,
        caller: &Caller,
        name: &str,
        args: JsonObject,
    ) -> Option<Output> {
        let now = self.clock.now();
        let store = &self.store;
        let result = match name {
            "get-todos" => {
                with_args(args, async |args: GetTodosArgs| {
                    let filter = Filter {
                        completed: args.completed,
                        text: args.search.filter(|s| !s.trim().is_empty()),
                    };
                    let todos = store.list(&caller.owner, &filter).await?;
                    Ok(structured(&TodoList {
                        count: todos.len(),
                        todos,
                    }))
                })
                .await
            }
            "create-todo" => {
                with_args(args, async |args: CreateTodoArgs| {
                    let title = Title::parse(&args.title)?;
                    let todo = store.create(&caller.owner, &title, now).await?;
                    Ok(structured(&TodoResult { todo }))
                })
                .await
            }
            "update-todo" => {
                with_args(args, async |args: UpdateTodoArgs| {
                    let id = parse_id(args.id)?;
                    let change = TodoChange::parse(args.title.as_deref(), args.completed)?;
                    let todo = store.update(&caller.owner, id, &change, now).await?;
                    Ok(structured(&TodoResult { todo }))
                })
                .await
            }
            "toggle-todo" => {
                with_args(args, async |args: IdArgs| {
                    let todo = store
                        .set_completed(&caller.owner, parse_id(args.id)?, None, now)
                        .await?;
                    Ok(structured(&TodoResult { todo }))
                })
                .await
            }
            "delete-todo" => {
                with_args(args, async |args: IdArgs| {
                    let todo = store.delete(&caller.owner, parse_id(args.id)?).await?;
                    Ok(structured(&TodoResult { todo }))
                })
                .await
            }
            _ => return None,
        };
        audit(caller, name, &result);
        Some(result)
    }

    /// Whether tool `name` exists.
    pub fn has_tool(&self, name: &str) -> bool {
        self.tool_router.get(name).is_some()
    }

    /// A call that came through rmcp's tool router.
    async fn routed(
        &self,
        parts: &http::request::Parts,
        name: &str,
        args: JsonObject,
    ) -> Result<CallToolResult, ErrorData> {
        let caller = caller(parts)?;
        self.call(caller, name, args)
            .await
            .map(Output::into_result)
            .ok_or_else(|| ErrorData::internal_error("a routed tool has no implementation", None))
    }

    #[tool(
        name = "get-todos",
        description = "List the signed-in user's todos (oldest first), optionally only done or open ones, or those whose title contains a text.",
        input_schema = schema_for_type::<GetTodosArgs>(),
        output_schema = schema_for_output::<TodoList>(),
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn get_todos(
        &self,
        Extension(parts): Extension<http::request::Parts>,
        Parameters(args): Parameters<JsonObject>,
    ) -> Result<CallToolResult, ErrorData> {
        self.routed(&parts, "get-todos", args).await
    }

    #[tool(
        name = "create-todo",
        description = "Create a todo for the signed-in user. The title is trimmed and must be 1-500 characters.",
        input_schema = schema_for_type::<CreateTodoArgs>(),
        output_schema = schema_for_output::<TodoResult>(),
        annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = false, open_world_hint = false)
    )]
    async fn create_todo(
        &self,
        Extension(parts): Extension<http::request::Parts>,
        Parameters(args): Parameters<JsonObject>,
    ) -> Result<CallToolResult, ErrorData> {
        self.routed(&parts, "create-todo", args).await
    }

    #[tool(
        name = "update-todo",
        description = "Change a todo's title and/or mark it done or not done. Give the id and at least one of title, completed.",
        input_schema = schema_for_type::<UpdateTodoArgs>(),
        output_schema = schema_for_output::<TodoResult>(),
        annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = true, open_world_hint = false)
    )]
    async fn update_todo(
        &self,
        Extension(parts): Extension<http::request::Parts>,
        Parameters(args): Parameters<JsonObject>,
    ) -> Result<CallToolResult, ErrorData> {
        self.routed(&parts, "update-todo", args).await
    }

    #[tool(
        name = "toggle-todo",
        description = "Flip a todo between done and not done.",
        input_schema = schema_for_type::<IdArgs>(),
        output_schema = schema_for_output::<TodoResult>(),
        annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = false, open_world_hint = false)
    )]
    async fn toggle_todo(
        &self,
        Extension(parts): Extension<http::request::Parts>,
        Parameters(args): Parameters<JsonObject>,
    ) -> Result<CallToolResult, ErrorData> {
        self.routed(&parts, "toggle-todo", args).await
    }

    #[tool(
        name = "delete-todo",
        description = "Delete a todo permanently.",
        input_schema = schema_for_type::<IdArgs>(),
        output_schema = schema_for_output::<TodoResult>(),
        annotations(read_only_hint = false, destructive_hint = true, idempotent_hint = false, open_world_hint = false)
    )]
    async fn delete_todo(
        &self,
        Extension(parts): Extension<http::request::Parts>,
        Parameters(args): Parameters<JsonObject>,
    ) -> Result<CallToolResult, ErrorData> {
        self.routed(&parts, "delete-todo", args).await
    }
}

/// Runs `f` on the typed arguments; invalid ones are a tool error the model can read.
async fn with_args<T: DeserializeOwned>(
    args: JsonObject,
    f: impl AsyncFnOnce(T) -> Result<Output, TodoError>,
) -> Output {
    match parse_args::<T>(args) {
        Ok(args) => outcome(f(args).await),
        Err(message) => Output::Error(tool_error(message)),
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for TodoTools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("todo0", env!("CARGO_PKG_VERSION")))
            .with_instructions("Manage the signed-in user's todo list. Each tool's _meta.requiredScopes says which OAuth scopes to request for it; _meta.acceptedScopeSets, when present, lists every scope set that lets it run.")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::store::SqliteStore;

    #[tokio::test]
    async fn every_tool_is_in_the_scope_table_and_advertises_what_the_policy_requires() {
        let store: Arc<dyn TodoStore> = Arc::new(SqliteStore::temporary().await.unwrap());
        for policy in [ScopePolicy::LeastPrivilege, ScopePolicy::SampleCompatible] {
            let tools = TodoTools::new(store.clone(), protocol::clock::system(), policy);
            let listed = tools.tool_router.list_all();
            let mut names: Vec<&str> = listed.iter().map(|t| t.name.as_ref()).collect();
            names.sort_unstable();
            let mut table: Vec<&str> = scopes::TOOLS.iter().map(|(name, _)| *name).collect();
            table.sort_unstable();
            assert_eq!(names, table, "one table for every tool");
            for tool in &listed {
                let need = policy.tool_need(&tool.name).unwrap();
                let meta = tool.meta.as_ref().unwrap();
                assert_eq!(
                    meta.get("requiredScopes"),
                    Some(&serde_json::json!([scopes::CONNECT, need.preferred()])),
                    "{policy} {}",
                    tool.name
                );
                let sets = meta.get("acceptedScopeSets");
                match (policy, tool.name.as_ref()) {
                    (ScopePolicy::SampleCompatible, "delete-todo") => assert_eq!(
                        sets,
                        Some(&serde_json::json!([
                            [scopes::CONNECT, scopes::MANAGE],
                            [scopes::CONNECT, scopes::DELETE]
                        ]))
                    ),
                    _ => assert_eq!(sets, None, "{policy} {}", tool.name),
                }
            }
        }
    }
}
