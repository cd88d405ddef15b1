//! GitHub facts shared by github0 (the offline GitHub sandbox, which serves them) and agent0
//! (which offers them before a person can list them).

/// The MCP `Tool` declarations (a JSON array: `name`, `description`, `inputSchema`,
/// `annotations`) of GitHub's remote MCP server for the tools the demo uses — `get_me`,
/// `list_pull_requests`, `pull_request_read` and `add_issue_comment` — as the public
/// github/github-mcp-server tool snapshots declare them. github0's `/mcp` lists exactly these;
/// agent0 offers them for the GitHub MCP connection to a person who has no GitHub token yet, so
/// no brokered exchange happens before a GitHub tool is actually called.
pub const MCP_TOOLS_JSON: &str = include_str!("github_mcp_tools.json");

/// The names in [`MCP_TOOLS_JSON`], in its order.
pub const MCP_TOOL_NAMES: [&str; 4] = [
    "get_me",
    "list_pull_requests",
    "pull_request_read",
    "add_issue_comment",
];

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::Value;

    use super::*;

    #[test]
    fn the_declarations_are_mcp_tools_with_githubs_names_and_object_schemas() {
        let tools: Vec<Value> = serde_json::from_str(MCP_TOOLS_JSON).unwrap();
        let names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
        assert_eq!(names, MCP_TOOL_NAMES);
        for tool in &tools {
            assert_eq!(tool["inputSchema"]["type"], "object", "{tool}");
            assert!(!tool["description"].as_str().unwrap().is_empty(), "{tool}");
        }
        // pull_request_read picks what to read with `method` (github0 supports `get` at least).
        assert!(tools[2]["inputSchema"]["properties"]["method"].is_object());
    }
}
