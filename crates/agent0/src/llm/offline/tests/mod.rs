//! Tests of the offline model: each phrasing → the exact tool calls; multi-step flows against a
//! small in-memory todo store that answers like todo0's MCP tools.

use std::sync::Mutex;

use rstest::rstest;
use serde_json::{Value, json};

use super::*;

const TOOLS: [&str; 5] = [
    "get-todos",
    "create-todo",
    "update-todo",
    "toggle-todo",
    "delete-todo",
];

fn specs(names: &[&str]) -> Vec<ToolSpec> {
    names
        .iter()
        .map(|name| ToolSpec {
            name: (*name).to_owned(),
            description: String::new(),
            input_schema: std::sync::Arc::new(serde_json::Map::from_iter([(
                "type".to_owned(),
                json!("object"),
            )])),
        })
        .collect()
}

fn todo_tools() -> Vec<ToolSpec> {
    specs(&TOOLS)
}

/// The reply's tool calls as `[[name, input], …]`.
fn calls_of(reply: &ModelReply) -> Value {
    Value::Array(
        reply
            .content
            .iter()
            .filter_map(|b| match b {
                Block::ToolUse { name, input, .. } => Some(json!([name, input])),
                _ => None,
            })
            .collect(),
    )
}

fn text_of(reply: &ModelReply) -> String {
    reply
        .content
        .iter()
        .filter_map(|b| match b {
            Block::Text { text } => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

fn first_reply(text: &str) -> ModelReply {
    decide(&[Message::user_text(text)], &todo_tools())
}

mod changes;
mod phrasings;

// ---- multi-step flows against a store --------------------------------------------------------

/// A todo store answering like todo0's MCP tools.
#[derive(Default)]
struct Store {
    todos: Vec<(i64, String, bool)>,
    next: i64,
}

impl Store {
    fn with(todos: &[(&str, bool)]) -> Self {
        let mut store = Self::default();
        for (title, done) in todos {
            store.next += 1;
            store.todos.push((store.next, (*title).to_owned(), *done));
        }
        store
    }

    fn json(todo: &(i64, String, bool)) -> Value {
        json!({ "id": todo.0, "title": todo.1, "completed": todo.2,
                "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z" })
    }

    fn call(&mut self, name: &str, input: &Value) -> (String, bool) {
        let bare = TOOLS
            .iter()
            .find(|t| name.ends_with(*t))
            .expect("a todo tool");
        let id = input["id"].as_i64().unwrap_or(0);
        let found = self.todos.iter().position(|t| t.0 == id);
        let one =
            |todo: &(i64, String, bool)| (json!({ "todo": Self::json(todo) }).to_string(), false);
        match (*bare, found) {
            ("get-todos", _) => {
                let search = input["search"].as_str().map(str::to_lowercase);
                let todos: Vec<Value> = self
                    .todos
                    .iter()
                    .filter(|t| input["completed"].as_bool().is_none_or(|c| t.2 == c))
                    .filter(|t| {
                        search
                            .as_ref()
                            .is_none_or(|s| t.1.to_lowercase().contains(s))
                    })
                    .map(Self::json)
                    .collect();
                (
                    json!({ "count": todos.len(), "todos": todos }).to_string(),
                    false,
                )
            }
            ("create-todo", _) => {
                self.next += 1;
                let title = input["title"].as_str().unwrap_or_default().to_owned();
                self.todos.push((self.next, title, false));
                one(self.todos.last().expect("just pushed"))
            }
            (_, None) => (format!("todo {id} not found"), true),
            ("update-todo", Some(at)) => {
                if let Some(title) = input["title"].as_str() {
                    self.todos[at].1 = title.to_owned();
                }
                if let Some(done) = input["completed"].as_bool() {
                    self.todos[at].2 = done;
                }
                one(&self.todos[at])
            }
            ("toggle-todo", Some(at)) => {
                self.todos[at].2 = !self.todos[at].2;
                one(&self.todos[at])
            }
            (_, Some(at)) => {
                let todo = self.todos.remove(at);
                one(&todo)
            }
        }
    }
}

/// Runs one request to its final text, executing each tool call; returns the text and the calls.
fn converse(
    store: &mut Store,
    history: &mut Vec<Message>,
    tools: &[ToolSpec],
    text: &str,
) -> (String, Value) {
    history.push(Message::user_text(text));
    let mut calls = Vec::new();
    for _ in 0..10 {
        let reply = decide(history, tools);
        history.push(Message {
            role: Role::Assistant,
            content: reply.content.clone(),
        });
        if reply.stop_reason == StopReason::EndTurn {
            return (text_of(&reply), Value::Array(calls));
        }
        let mut results = Vec::new();
        for block in &reply.content {
            if let Block::ToolUse { id, name, input } = block {
                calls.push(json!([name, input]));
                let (content, is_error) = store.call(name, input);
                results.push(Block::ToolResult {
                    tool_use_id: id.clone(),
                    content,
                    is_error,
                });
            }
        }
        history.push(Message {
            role: Role::User,
            content: results,
        });
    }
    panic!("no final answer after 10 steps: {history:#?}");
}

fn run(store: &mut Store, text: &str) -> (String, Value) {
    converse(store, &mut Vec::new(), &todo_tools(), text)
}

#[test]
fn journey_two_list_add_mark_delete() {
    let mut store = Store::default();
    let mut history = Vec::new();
    let tools = todo_tools();
    let mut say = |text: &str| converse(&mut store, &mut history, &tools, text).0;
    assert_eq!(say("list my todos"), "You have no todos yet.");
    assert_eq!(
        say(r#"add a todo "prep the demo""#),
        "Added **prep the demo** (#1)."
    );
    assert_eq!(
        say("list my todos"),
        "You have 1 todo:\n\n- ☐ #1 prep the demo"
    );
    assert_eq!(say("mark todo 1 as done"), "Marked #1 as done.");
    assert_eq!(
        say("what's left"),
        "You have no open todos: there is nothing left to do."
    );
    assert_eq!(
        say("list my todos"),
        "You have 1 todo:\n\n- ✓ #1 prep the demo"
    );
    assert_eq!(say("delete todo 1"), "Deleted #1.");
    assert_eq!(
        say("delete todo 1"),
        "I couldn't delete #1: todo 1 not found."
    );
    assert_eq!(say("list my todos"), "You have no todos yet.");
}

#[rstest]
#[case(
    "list my todos",
    "You have 3 todos:\n\n- ✓ #1 buy milk\n- ☐ #2 prep the demo\n- ☐ #3 call mom"
)]
#[case(
    "what's left",
    "You have 2 open todos:\n\n- ☐ #2 prep the demo\n- ☐ #3 call mom"
)]
#[case(
    "show completed todos",
    "You have 1 completed todo:\n\n- ✓ #1 buy milk"
)]
#[case("find todos about milk", "1 todo match “milk”:\n\n- ✓ #1 buy milk")]
#[case("search for bread", "None of your todos match “bread”.")]
#[case("mark 2 as done", "Marked #2 as done.")]
#[case("undo todo 1", "Marked #1 as not done.")]
#[case("toggle todo 1", "Marked #1 as not done.")]
#[case(r#"rename todo 3 to "call mum""#, "Renamed #3 to **call mum**.")]
#[case("delete todo 7", "I couldn't delete #7: todo 7 not found.")]
#[case("mark 9 as done", "I couldn't mark #9 as done: todo 9 not found.")]
#[case("rename todo 9 to x", "I couldn't rename #9: todo 9 not found.")]
#[case(
    "delete todos 2 and 7",
    "Deleted #2.\n\nI couldn't delete #7: todo 7 not found."
)]
#[case(r#"add todos "a" and "b""#, "Added **a** (#4).\n\nAdded **b** (#5).")]
#[case(
    "add bake *bread* <b>now</b>",
    r"Added **bake \*bread\* \<b\>now\</b\>** (#4)."
)]
fn summaries(#[case] text: &str, #[case] expected: &str) {
    let mut store = Store::with(&[
        ("buy milk", true),
        ("prep the demo", false),
        ("call mom", false),
    ]);
    assert_eq!(run(&mut store, text).0, expected);
}

#[test]
fn a_later_read_waits_for_earlier_changes() {
    let mut store = Store::default();
    let (text, calls) = run(&mut store, "add milk, then list my todos");
    assert_eq!(
        calls,
        json!([["create-todo", {"title": "milk"}], ["get-todos", {}]])
    );
    assert_eq!(
        text,
        "Added **milk** (#1).\n\nYou have 1 todo:\n\n- ☐ #1 milk"
    );
}

#[test]
fn several_titles_are_looked_up_together_then_changed_together() {
    let mut store = Store::with(&[("buy milk", false), ("call mom", false), ("walk", false)]);
    let (text, calls) = run(
        &mut store,
        r#"delete "buy milk" and "call mom", then list my todos"#,
    );
    assert_eq!(
        calls,
        json!([
            ["get-todos", {"search": "buy milk"}],
            ["get-todos", {"search": "call mom"}],
            ["delete-todo", {"id": 1}],
            ["delete-todo", {"id": 2}],
            ["get-todos", {}]
        ])
    );
    assert_eq!(
        text,
        "Deleted #1.\n\nDeleted #2.\n\nYou have 1 todo:\n\n- ☐ #3 walk"
    );
}

#[test]
fn a_lookup_after_an_add_sees_the_new_todo() {
    let mut store = Store::default();
    let (text, calls) = run(&mut store, r#"add "oat milk" and mark "oat milk" as done"#);
    assert_eq!(
        calls,
        json!([
            ["create-todo", {"title": "oat milk"}],
            ["get-todos", {"search": "oat milk"}],
            ["update-todo", {"id": 1, "completed": true}]
        ])
    );
    assert_eq!(text, "Added **oat milk** (#1).\n\nMarked #1 as done.");
}

#[test]
fn search_then_delete_by_title() {
    let mut store = Store::with(&[("prep the demo slides", false), ("prep the demo", false)]);
    let (text, calls) = run(&mut store, "delete the todo called prep the demo");
    assert_eq!(
        calls,
        json!([["get-todos", {"search": "prep the demo"}], ["delete-todo", {"id": 2}]])
    );
    assert_eq!(text, "Deleted #2.");
    assert_eq!(store.todos.len(), 1);
}

#[test]
fn search_then_mark_prefers_the_one_not_yet_done() {
    let mut store = Store::with(&[("buy milk", true), ("buy milk", false)]);
    let (text, calls) = run(&mut store, "mark “buy milk” as done");
    assert_eq!(
        calls,
        json!([["get-todos", {"search": "buy milk"}], ["update-todo", {"id": 2, "completed": true}]])
    );
    assert_eq!(text, "Marked #2 as done.");
}

#[test]
fn by_title_when_already_in_that_state_changes_nothing() {
    let mut store = Store::with(&[("buy milk", true)]);
    let (text, calls) = run(&mut store, r#"mark "buy milk" as done"#);
    assert_eq!(calls, json!([["get-todos", {"search": "buy milk"}]]));
    assert_eq!(text, "#1 is already done.");
}

#[test]
fn by_title_with_several_matches_asks_which() {
    let mut store = Store::with(&[("buy milk", false), ("milk the cow", false)]);
    let (text, calls) = run(&mut store, "delete the todo called milk");
    assert_eq!(calls, json!([["get-todos", {"search": "milk"}]]));
    assert!(text.starts_with("Several todos match “milk”"), "{text}");
    assert!(
        text.contains("- ☐ #1 buy milk\n- ☐ #2 milk the cow"),
        "{text}"
    );
    assert!(text.contains("“delete todo 1”"), "{text}");
    assert_eq!(store.todos.len(), 2);
}

#[test]
fn by_title_with_no_match_explains() {
    let mut store = Store::with(&[("buy milk", false)]);
    let (text, calls) = run(&mut store, r#"rename "bread" to "rye bread""#);
    assert_eq!(calls, json!([["get-todos", {"search": "bread"}]]));
    assert_eq!(text, "I couldn't find a todo called “bread”.");
}

#[test]
fn tool_errors_are_reported_plainly() {
    let messages = [
        Message::user_text("list my todos"),
        Message {
            role: Role::Assistant,
            content: vec![Block::ToolUse {
                id: "offline-1".into(),
                name: "get-todos".into(),
                input: json!({}),
            }],
        },
        Message {
            role: Role::User,
            content: vec![Block::ToolResult {
                tool_use_id: "offline-1".into(),
                content: "The todo store is temporarily unavailable; please try again shortly."
                    .into(),
                is_error: true,
            }],
        },
    ];
    let reply = decide(&messages, &todo_tools());
    assert_eq!(reply.stop_reason, StopReason::EndTurn);
    assert_eq!(
        text_of(&reply),
        "I couldn't list your todos: The todo store is temporarily unavailable; please try \
         again shortly."
    );
}

#[test]
fn a_missing_result_counts_as_an_error() {
    let messages = [
        Message::user_text("delete todo 4"),
        Message {
            role: Role::Assistant,
            content: vec![Block::ToolUse {
                id: "offline-1".into(),
                name: "delete-todo".into(),
                input: json!({"id": 4}),
            }],
        },
        Message {
            role: Role::User,
            content: vec![],
        },
    ];
    let text = text_of(&decide(&messages, &todo_tools()));
    assert_eq!(
        text,
        "I couldn't delete #4: no result came back for this tool call."
    );
}

#[test]
fn calls_it_did_not_plan_are_not_misread() {
    let messages = [
        Message::user_text("list my todos"),
        Message {
            role: Role::Assistant,
            content: vec![Block::ToolUse {
                id: "x".into(),
                name: "delete-todo".into(),
                input: json!({"id": 1}),
            }],
        },
        Message {
            role: Role::User,
            content: vec![Block::ToolResult {
                tool_use_id: "x".into(),
                content: "{}".into(),
                is_error: false,
            }],
        },
    ];
    assert_eq!(text_of(&decide(&messages, &todo_tools())), LOST_TRACK);
}

// ---- tools: namespaced, missing, fallbacks ---------------------------------------------------

#[test]
fn namespaced_tools_are_found_and_used() {
    let names: Vec<String> = TOOLS.iter().map(|t| format!("todo0__{t}")).collect();
    let tools = specs(&names.iter().map(String::as_str).collect::<Vec<_>>());
    let mut store = Store::default();
    let (text, calls) = converse(
        &mut store,
        &mut Vec::new(),
        &tools,
        "add milk and list my todos",
    );
    assert_eq!(
        calls,
        json!([["todo0__create-todo", {"title": "milk"}], ["todo0__get-todos", {}]])
    );
    assert_eq!(
        text,
        "Added **milk** (#1).\n\nYou have 1 todo:\n\n- ☐ #1 milk"
    );
}

#[rstest]
#[case(&["github__get-todos", "todo0__get-todos"], "todo0__get-todos")]
#[case(&["todo0__get-todos", "get-todos"], "get-todos")]
#[case(&["a.get-todos", "b.get-todos"], "a.get-todos")]
fn the_todo_tool_is_preferred(#[case] names: &[&str], #[case] expected: &str) {
    let reply = decide(&[Message::user_text("list my todos")], &specs(names));
    assert_eq!(calls_of(&reply), json!([[expected, {}]]));
}

#[rstest]
#[case(&[], "list my todos", "`get-todos`")]
#[case(&["forget-todos"], "list my todos", "`get-todos`")]
#[case(&["get-todos"], "delete todo 1", "`delete-todo`")]
#[case(&["get-todos"], "add milk", "`create-todo`")]
#[case(&["get-todos"], "mark 1 as done", "`update-todo`")]
#[case(&["update-todo"], r#"delete "milk""#, "`delete-todo`")]
#[case(&["update-todo"], r#"mark "milk" as done"#, "`get-todos`")]
fn a_missing_tool_is_named_honestly(
    #[case] names: &[&str],
    #[case] text: &str,
    #[case] tool: &str,
) {
    let reply = decide(&[Message::user_text(text)], &specs(names));
    assert_eq!(calls_of(&reply), json!([]));
    let reply = text_of(&reply);
    assert!(
        reply.contains(tool) && reply.contains("isn't available"),
        "{reply}"
    );
}

#[rstest]
#[case(false, json!([["get-todos", {}], ["toggle-todo", {"id": 1}]]), "Marked #1 as done.")]
#[case(true, json!([["get-todos", {}]]), "#1 is already done.")]
fn without_update_todo_toggle_is_used_only_when_needed(
    #[case] is_done: bool,
    #[case] expected_calls: Value,
    #[case] expected_text: &str,
) {
    let tools = specs(&["get-todos", "toggle-todo"]);
    let mut store = Store::with(&[("buy milk", is_done)]);
    let (text, calls) = converse(&mut store, &mut Vec::new(), &tools, "mark todo 1 as done");
    assert_eq!(calls, expected_calls);
    assert_eq!(text, expected_text);
    assert!(store.todos[0].2);
}

#[test]
fn with_only_toggle_it_toggles_and_reports_the_state() {
    let tools = specs(&["toggle-todo"]);
    let mut store = Store::with(&[("buy milk", false)]);
    let (text, calls) = converse(&mut store, &mut Vec::new(), &tools, "mark todo 1 as done");
    assert_eq!(calls, json!([["toggle-todo", {"id": 1}]]));
    assert_eq!(text, "Marked #1 as done.");
}

// ---- determinism, ids, the Model trait ---------------------------------------------------------

#[test]
fn the_same_conversation_gets_the_same_reply() {
    for text in [
        "add milk and delete todo 2",
        "what's the weather",
        "show bob's todos",
    ] {
        assert_eq!(first_reply(text), first_reply(text), "{text}");
    }
}

#[test]
fn tool_use_ids_are_unique_across_the_conversation() {
    let mut store = Store::default();
    let mut history = Vec::new();
    let tools = todo_tools();
    converse(&mut store, &mut history, &tools, r#"add todos "a" and "b""#);
    converse(
        &mut store,
        &mut history,
        &tools,
        "delete todo 1, then list my todos",
    );
    let ids: Vec<&str> = history
        .iter()
        .flat_map(|m| &m.content)
        .filter_map(|b| match b {
            Block::ToolUse { id, .. } => Some(id.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(ids, ["offline-1", "offline-2", "offline-3", "offline-4"]);
}

#[test]
fn the_last_user_text_is_the_request() {
    let mut store = Store::with(&[("buy milk", false)]);
    let mut history = Vec::new();
    let tools = todo_tools();
    converse(&mut store, &mut history, &tools, "delete todo 1");
    let (text, calls) = converse(&mut store, &mut history, &tools, "list my todos");
    assert_eq!(calls, json!([["get-todos", {}]]));
    assert_eq!(text, "You have no todos yet.");
}

#[tokio::test]
async fn respond_streams_the_final_text_once() {
    let model = OfflineModel::new();
    assert_eq!(
        model.info(),
        ModelInfo {
            provider: "offline".into(),
            model: "secure-agent-offline-1".into(),
        }
    );
    let seen = Mutex::new(Vec::<String>::new());
    let sink = |t: &str| seen.lock().expect("not poisoned").push(t.to_owned());
    let tools = todo_tools();
    let mut messages = vec![Message::user_text("list my todos")];
    fn request<'a>(messages: &'a [Message], tools: &'a [ToolSpec]) -> ModelRequest<'a> {
        ModelRequest {
            system: "",
            messages,
            tools,
            max_tokens: 1024,
        }
    }
    let first = model
        .respond(request(&messages, &tools), &sink)
        .await
        .expect("offline never fails");
    assert_eq!(first.stop_reason, StopReason::ToolUse);
    assert!(seen.lock().expect("not poisoned").is_empty());
    messages.push(Message {
        role: Role::Assistant,
        content: first.content,
    });
    messages.push(Message {
        role: Role::User,
        content: vec![Block::ToolResult {
            tool_use_id: "offline-1".into(),
            content: json!({"todos": [], "count": 0}).to_string(),
            is_error: false,
        }],
    });
    let second = model
        .respond(request(&messages, &tools), &sink)
        .await
        .expect("offline never fails");
    assert_eq!(second.stop_reason, StopReason::EndTurn);
    assert_eq!(
        *seen.lock().expect("not poisoned"),
        ["You have no todos yet."]
    );
}
