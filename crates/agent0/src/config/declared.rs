//! Declared tools of brokered (`oauth-sts`) MCP servers: the MCP `Tool` objects agent0 offers
//! the model for such a server to a person who holds no ISV token for it yet, so that offering
//! them costs no brokered exchange (and shows no consent card nobody asked for); only a call of
//! one of them needs the person's token, and asks their consent then. Once the person has a
//! token, the server's own `tools/list` is used instead.
//!
//! The sample's GitHub MCP server declares GitHub's own tools ([`github_mcp_tools`], from
//! [`protocol::github::MCP_TOOLS_JSON`], the file github0 serves); another `[[mcp_servers]]`
//! entry with `auth = "oauth-sts"` may name a `tools_file`: a JSON array of MCP `Tool` objects
//! (`name`, `description`, `inputSchema` with `"type": "object"`, optional `annotations`), as the
//! server's `tools/list` answers them. It is read and validated at startup.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use rmcp::model::Tool;

/// The largest `tools_file` read, in bytes.
const MAX_TOOLS_FILE: u64 = 4 * 1024 * 1024;

/// Parses `text` as a JSON array of MCP `Tool` objects: at least one, each with a non-empty
/// name (unique in the list) and an object input schema. The error says what is wrong and
/// where (the tool's position from 1, and its name when it has one).
pub fn parse_tools(text: &str) -> Result<Vec<Tool>, String> {
    let values: Vec<serde_json::Value> = serde_json::from_str(text).map_err(|e| {
        format!("must be a JSON array of MCP Tool objects (as tools/list answers them): {e}")
    })?;
    if values.is_empty() {
        return Err("declares no tool: give at least one, or leave the setting out".into());
    }
    let mut seen = HashSet::new();
    let mut tools = Vec::with_capacity(values.len());
    for (i, value) in values.into_iter().enumerate() {
        let at = match value.get("name").and_then(serde_json::Value::as_str) {
            Some(name) => format!("tool #{} ({name:?})", i + 1),
            None => format!("tool #{}", i + 1),
        };
        let tool: Tool = serde_json::from_value(value)
            .map_err(|e| format!("{at} is not an MCP Tool object: {e}"))?;
        if tool.name.trim().is_empty() {
            return Err(format!("{at} has an empty name"));
        }
        if tool
            .input_schema
            .get("type")
            .and_then(serde_json::Value::as_str)
            != Some("object")
        {
            return Err(format!(
                "{at}: its inputSchema must be a JSON Schema with \"type\": \"object\""
            ));
        }
        if !seen.insert(tool.name.to_string()) {
            return Err(format!("{at} is declared twice"));
        }
        tools.push(tool);
    }
    Ok(tools)
}

/// Reads and parses `path` ([`parse_tools`]).
pub fn load_tools_file(path: &Path) -> Result<Vec<Tool>, String> {
    let size = std::fs::metadata(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?
        .len();
    if size > MAX_TOOLS_FILE {
        return Err(format!(
            "{} is {size} bytes; at most {MAX_TOOLS_FILE} are read",
            path.display()
        ));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    parse_tools(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// GitHub's declarations of the tools the demo uses (`get_me`, `list_pull_requests`,
/// `pull_request_read`, `add_issue_comment`), shared with github0.
pub fn github_mcp_tools() -> Result<Arc<[Tool]>, String> {
    parse_tools(protocol::github::MCP_TOOLS_JSON).map(Arc::from)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn githubs_declarations_are_the_four_tools_github0_serves() {
        let tools = github_mcp_tools().unwrap();
        let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
        assert_eq!(names, protocol::github::MCP_TOOL_NAMES);
        let get_me = &tools[0];
        assert!(
            get_me
                .description
                .as_deref()
                .unwrap()
                .contains("authenticated GitHub user")
        );
        assert_eq!(
            get_me.annotations.as_ref().unwrap().read_only_hint,
            Some(true)
        );
    }

    #[test]
    fn a_tools_file_is_read_and_bad_ones_say_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("tools.json");
        std::fs::write(
            &good,
            r#"[{"name": "list_issues", "description": "Lists issues",
                 "inputSchema": {"type": "object", "properties": {"team": {"type": "string"}}},
                 "annotations": {"readOnlyHint": true}}]"#,
        )
        .unwrap();
        let tools = load_tools_file(&good).unwrap();
        assert_eq!(tools.len(), 1);
        assert_eq!(tools[0].name, "list_issues");
        assert_eq!(tools[0].description.as_deref(), Some("Lists issues"));

        for (text, expected) in [
            (
                "{\"name\": \"x\"}",
                "must be a JSON array of MCP Tool objects",
            ),
            ("not json", "must be a JSON array"),
            ("[]", "declares no tool"),
            (
                r#"[{"description": "no name", "inputSchema": {"type": "object"}}]"#,
                "tool #1 is not an MCP Tool object",
            ),
            (
                r#"[{"name": "a"}]"#,
                "tool #1 (\"a\") is not an MCP Tool object",
            ),
            (
                r#"[{"name": " ", "inputSchema": {"type": "object"}}]"#,
                "has an empty name",
            ),
            (
                r#"[{"name": "a", "inputSchema": {"type": "string"}}]"#,
                "\"type\": \"object\"",
            ),
            (
                r#"[{"name": "a", "inputSchema": {"type": "object"}}, {"name": "a", "inputSchema": {"type": "object"}}]"#,
                "tool #2 (\"a\") is declared twice",
            ),
        ] {
            let err = parse_tools(text).unwrap_err();
            assert!(err.contains(expected), "{text}: {err}");
        }
        let err = load_tools_file(&dir.path().join("missing.json")).unwrap_err();
        assert!(err.starts_with("cannot read"), "{err}");
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, "[]").unwrap();
        let err = load_tools_file(&bad).unwrap_err();
        assert!(
            err.contains("bad.json") && err.contains("declares no tool"),
            "{err}"
        );
    }
}
