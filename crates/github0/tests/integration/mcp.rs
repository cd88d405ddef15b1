//! The MCP endpoint with rmcp's own client.

use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, ClientCapabilities, ClientConfig, Implementation};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;

use super::harness::*;

async fn connect(
    sandbox: &Sandbox,
    token: &str,
) -> Result<
    rmcp::service::RunningService<rmcp::RoleClient, ClientConfig>,
    rmcp::service::ClientInitializeError,
> {
    connect_to(sandbox, "/mcp", token).await
}

async fn connect_to(
    sandbox: &Sandbox,
    path: &str,
    token: &str,
) -> Result<
    rmcp::service::RunningService<rmcp::RoleClient, ClientConfig>,
    rmcp::service::ClientInitializeError,
> {
    let config =
        StreamableHttpClientTransportConfig::with_uri(sandbox.url(path)).auth_header(token);
    let transport = StreamableHttpClientTransport::from_config(config);
    ClientConfig::new(
        ClientCapabilities::default(),
        Implementation::new("github0-tests", "0"),
    )
    .serve(transport)
    .await
}

fn args(value: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    value.as_object().unwrap().clone()
}

fn text_of(result: &rmcp::model::CallToolResult) -> String {
    result.content[0].as_text().unwrap().text.clone()
}

#[tokio::test]
async fn githubs_tools_with_githubs_schemas_over_streamable_http() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::start(dir.path()).await;
    let tokens = sandbox
        .tokens_for("alice", ALICE_PASSWORD, "repo read:user")
        .await;
    let token = tokens["access_token"].as_str().unwrap();
    let client = connect(&sandbox, token).await.unwrap();

    let tools = client.list_all_tools().await.unwrap();
    let mut names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "add_issue_comment",
            "get_me",
            "list_pull_requests",
            "pull_request_read"
        ]
    );
    let schema = |name: &str| {
        serde_json::to_value(&*tools.iter().find(|t| t.name == name).unwrap().input_schema).unwrap()
    };
    assert_eq!(
        schema("list_pull_requests")["required"],
        serde_json::json!(["owner", "repo"])
    );
    assert!(schema("list_pull_requests")["properties"]["perPage"].is_object());
    assert_eq!(
        schema("pull_request_read")["required"],
        serde_json::json!(["method", "owner", "repo", "pullNumber"])
    );
    assert_eq!(
        schema("add_issue_comment")["required"],
        serde_json::json!(["owner", "repo", "issue_number"])
    );
    let get_me = tools.iter().find(|t| t.name == "get_me").unwrap();
    assert_eq!(
        get_me.annotations.as_ref().unwrap().read_only_hint,
        Some(true)
    );

    let me = client
        .call_tool(CallToolRequestParams::new("get_me"))
        .await
        .unwrap();
    let me: serde_json::Value = serde_json::from_str(&text_of(&me)).unwrap();
    assert_eq!(me["login"], "alice");

    let listed = client
        .call_tool(
            CallToolRequestParams::new("list_pull_requests").with_arguments(args(
                serde_json::json!({"owner": "acme", "repo": "widgets", "state": "open"}),
            )),
        )
        .await
        .unwrap();
    let listed: Vec<serde_json::Value> = serde_json::from_str(&text_of(&listed)).unwrap();
    assert_eq!(listed.len(), 2);

    let pr = client
        .call_tool(CallToolRequestParams::new("pull_request_read").with_arguments(args(
            serde_json::json!({"method": "get", "owner": "acme", "repo": "widgets", "pullNumber": 1}),
        )))
        .await
        .unwrap();
    let pr: serde_json::Value = serde_json::from_str(&text_of(&pr)).unwrap();
    assert_eq!(pr["number"], 1);
    assert_eq!(pr["user"]["login"], "mona");

    let diff = client
        .call_tool(CallToolRequestParams::new("pull_request_read").with_arguments(args(
            serde_json::json!({"method": "get_diff", "owner": "acme", "repo": "widgets", "pullNumber": 1}),
        )))
        .await
        .unwrap();
    assert_eq!(diff.is_error, Some(true));
    assert!(text_of(&diff).contains("get_diff"));

    let missing = client
        .call_tool(CallToolRequestParams::new("pull_request_read").with_arguments(args(
            serde_json::json!({"method": "get", "owner": "acme", "repo": "widgets", "pullNumber": 99}),
        )))
        .await
        .unwrap();
    assert_eq!(missing.is_error, Some(true));
    assert!(text_of(&missing).contains("404"));

    let added = client
        .call_tool(CallToolRequestParams::new("add_issue_comment").with_arguments(args(
            serde_json::json!({"owner": "acme", "repo": "widgets", "issue_number": 1, "body": "LGTM from MCP"}),
        )))
        .await
        .unwrap();
    assert_ne!(added.is_error, Some(true), "{}", text_of(&added));
    let added: serde_json::Value = serde_json::from_str(&text_of(&added)).unwrap();
    assert!(added["url"].as_str().unwrap().contains("#issuecomment-"));

    // Exactly one comment, visible through REST, by alice.
    let comments: Vec<serde_json::Value> = sandbox
        .api()
        .get(sandbox.url("/api/v3/repos/acme/widgets/issues/1/comments"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(comments.len(), 1);
    assert_eq!(comments[0]["body"], "LGTM from MCP");
    assert_eq!(comments[0]["user"]["login"], "alice");
    assert_eq!(comments[0]["id"].to_string(), added["id"].as_str().unwrap());
    client.cancel().await.unwrap();

    // GitHub's own URL ends in a slash (`…/mcp/`): the same endpoint answers there.
    let slashed = connect_to(&sandbox, "/mcp/", token).await.unwrap();
    let me = slashed
        .call_tool(CallToolRequestParams::new("get_me"))
        .await
        .unwrap();
    assert!(text_of(&me).contains("\"login\":\"alice\""));
    slashed.cancel().await.unwrap();
}

#[tokio::test]
async fn no_or_a_bad_token_is_401_with_the_challenge() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::start(dir.path()).await;
    let initialize = serde_json::json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}
    });
    for auth in [
        None,
        Some("Bearer ghu_notarealtoken"),
        Some("Bearer garbage"),
    ] {
        let mut request = reqwest::Client::new()
            .post(sandbox.url("/mcp"))
            .header("accept", "application/json, text/event-stream")
            .json(&initialize);
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401, "{auth:?}");
        let challenge = response.headers()["www-authenticate"].to_str().unwrap();
        assert!(challenge.starts_with("Bearer "), "{challenge}");
        assert!(
            challenge.contains(&format!(
                "resource_metadata=\"{}",
                sandbox.url("/.well-known/oauth-protected-resource/mcp")
            )),
            "{challenge}"
        );
    }
    assert!(connect(&sandbox, "ghu_notarealtoken").await.is_err());
    let metadata: serde_json::Value =
        reqwest::get(sandbox.url("/.well-known/oauth-protected-resource/mcp"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(metadata["resource"], sandbox.url("/mcp"));
}
