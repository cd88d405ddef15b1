//! todo0's scopes (ARCHITECTURE §5.6) and which ones each JSON-RPC call needs. The HTTP layer
//! and `tools/list` read the same table, so what a tool advertises is what is enforced.

use protocol::Scopes;

/// Needed for any request (open a session, list tools).
pub const CONNECT: &str = "mcp:connect";
/// Reading and searching todos.
pub const READ: &str = "mcp:tools:read";
/// Creating, renaming and completing todos.
pub const MANAGE: &str = "mcp:tools:manage";
/// Deleting todos.
pub const DELETE: &str = "mcp:tools:delete";

/// Every scope the server knows, for protected resource metadata.
pub const ALL: [&str; 4] = [CONNECT, READ, MANAGE, DELETE];

/// The tools and the scope each needs beyond `mcp:connect`.
pub const TOOL_SCOPES: [(&str, &str); 5] = [
    ("get-todos", READ),
    ("create-todo", MANAGE),
    ("update-todo", MANAGE),
    ("toggle-todo", MANAGE),
    ("delete-todo", DELETE),
];

/// The scope a tool needs beyond `mcp:connect`, if it is one of ours.
pub fn tool_scope(tool: &str) -> Option<&'static str> {
    TOOL_SCOPES
        .iter()
        .find(|(name, _)| *name == tool)
        .map(|(_, scope)| *scope)
}

/// Everything a JSON-RPC call needs: `mcp:connect`, plus the tool's scope for `tools/call`.
/// An unknown tool needs only `mcp:connect` (the MCP layer then answers "unknown tool").
pub fn required(method: &str, tool: Option<&str>) -> Scopes {
    let mut scopes = vec![CONNECT];
    if method == "tools/call" {
        scopes.extend(tool.and_then(tool_scope));
    }
    scopes.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_tool_call_needs_connect_and_its_own_scope() {
        assert_eq!(
            required("tools/call", Some("delete-todo")).to_string(),
            "mcp:connect mcp:tools:delete"
        );
        assert_eq!(required("tools/list", None).to_string(), "mcp:connect");
        assert_eq!(
            required("tools/call", Some("nope")).to_string(),
            "mcp:connect"
        );
    }
}
