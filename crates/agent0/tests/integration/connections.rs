//! Connections (ARCHITECTURE §7): several MCP servers at once with predictable names for clashing
//! tools, the person's identity given to the model, and `DISABLED_CONNECTIONS`.

use std::collections::BTreeSet;
use std::sync::Arc;

use agent0::connections::ConnectionKind;
use agent0::mcp::McpServer;
use serde_json::json;

use super::faults::Scripted;
use super::harness::AgentStack;

#[tokio::test]
async fn clashing_tools_of_two_servers_are_offered_under_their_connection_names() {
    let model = Arc::new(Scripted::default());
    let stack = AgentStack::start_with(model.clone(), |config| {
        // The same todo0 server a second time, as another connection.
        let mut twin: McpServer = config.mcp_servers[0].clone();
        twin.name = "twin".into();
        twin.label = "Twin MCP Server".into();
        if let agent0::config::AuthStrategy::IdJag { target, .. } = &mut twin.auth {
            target.connection = "twin".into();
        }
        config.mcp_servers.push(twin);
    })
    .await;
    let alice = stack.login("alice").await;
    model.push(Scripted::tool("twin__get-todos", json!({})));
    model.push(Scripted::text("Listed through the twin."));
    let reply = alice.chat("list my todos").await;
    let chip = &reply["toolResults"][0];
    assert_eq!(chip["tool"], "twin__get-todos");
    assert_eq!(chip["connection"], "twin");
    assert_eq!(chip["isError"], false, "{reply}");

    let offered = model.tools.lock().unwrap().first().cloned().unwrap();
    assert!(
        offered.contains(&"todo0__get-todos".to_owned()),
        "{offered:?}"
    );
    assert!(
        offered.contains(&"twin__get-todos".to_owned()),
        "{offered:?}"
    );
    assert!(
        !offered.contains(&"get-todos".to_owned()),
        "no ambiguous bare name"
    );

    // The model is told whom it acts for.
    let system = model.systems.lock().unwrap().first().cloned().unwrap();
    let (_, status) = alice.get("/auth/status").await;
    assert!(system.contains("Alice Example"), "{system}");
    assert!(
        system.contains(status["user"]["sub"].as_str().unwrap()),
        "{system}"
    );
}

#[tokio::test]
async fn disabled_mcp_servers_offer_no_tools_and_show_as_disabled() {
    let stack = AgentStack::start_with(
        Arc::new(agent0::llm::offline::OfflineModel::new()),
        |config| {
            config.disabled = BTreeSet::from([ConnectionKind::McpServer]);
        },
    )
    .await;
    let alice = stack.login("alice").await;
    let reply = alice.chat("list my todos").await;
    assert!(
        reply["toolResults"].as_array().unwrap().is_empty(),
        "{reply}"
    );
    assert!(
        reply["message"]
            .as_str()
            .unwrap()
            .contains("isn't available"),
        "{reply}"
    );
    let (_, panel) = alice.get("/api/connections/status").await;
    let todo0 = &panel["connections"][1];
    assert_eq!(todo0["name"], "todo0");
    assert_eq!(todo0["state"], "disabled");
    assert_eq!(todo0["disabled"], true);
    assert_eq!(stack.app.agent().hub().broker().exchange_count(), 0);
}
