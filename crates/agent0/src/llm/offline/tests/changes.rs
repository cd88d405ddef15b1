//! Multi-step flows of the newer requests against the store: a todo named by part of its title
//! (one match acts, several ask which, none says so; an answer to the question finishes the
//! request), changes to a filtered set (a listing, then one call per todo), and what it declines.

use rstest::rstest;
use serde_json::{Value, json};

use super::*;

// ---- a word or phrase from a title, and the question when it fits several ----------------------

fn household() -> Store {
    Store::with(&[
        ("buy milk", true),
        ("prep the demo", false),
        ("call mom", false),
        ("call the bank", false),
        ("water the plants", false),
    ])
}

#[rstest]
#[case(
    "please remove the demo todo",
    json!([["get-todos", {"search": "demo"}], ["delete-todo", {"id": 2}]]),
    "Deleted #2."
)]
#[case(
    "I finished calling mom",
    json!([
        ["get-todos", {"search": "calling mom"}],
        ["get-todos", {}],
        ["update-todo", {"id": 3, "completed": true}]
    ]),
    "Marked #3 as done."
)]
#[case(
    "cross off the bank one",
    json!([["get-todos", {"search": "bank"}], ["update-todo", {"id": 4, "completed": true}]]),
    "Marked #4 as done."
)]
#[case(
    "rename the plants one to water the ferns",
    json!([["get-todos", {"search": "plants"}], ["update-todo", {"id": 5, "title": "water the ferns"}]]),
    "Renamed #5 to **water the ferns**."
)]
#[case(
    "the todo about the demo is done",
    json!([["get-todos", {"search": "the demo"}], ["update-todo", {"id": 2, "completed": true}]]),
    "Marked #2 as done."
)]
#[case(
    "reopen the milk one",
    json!([["get-todos", {"search": "milk"}], ["update-todo", {"id": 1, "completed": false}]]),
    "Marked #1 as not done."
)]
#[case(
    "I'm done with watering plants",
    json!([
        ["get-todos", {"search": "watering plants"}],
        ["get-todos", {}],
        ["update-todo", {"id": 5, "completed": true}]
    ]),
    "Marked #5 as done."
)]
fn a_phrase_from_one_title_acts_on_that_todo(
    #[case] text: &str,
    #[case] expected_calls: Value,
    #[case] expected_text: &str,
) {
    let mut store = household();
    let (reply, calls) = run(&mut store, text);
    assert_eq!(calls, expected_calls, "{text}");
    assert_eq!(reply, expected_text, "{text}");
}

#[rstest]
#[case("cross off the call one", json!([["get-todos", {"search": "call"}]]), "“call”", "“mark todo 3 as done”")]
#[case(
    "I finished calling",
    json!([["get-todos", {"search": "calling"}], ["get-todos", {}]]),
    "“calling”",
    "“mark todo 3 as done”"
)]
#[case("delete the call todo", json!([["get-todos", {"search": "call"}]]), "“call”", "“delete todo 3”")]
fn a_phrase_that_fits_several_asks_which_and_changes_nothing(
    #[case] text: &str,
    #[case] expected_calls: Value,
    #[case] phrase: &str,
    #[case] example: &str,
) {
    let mut store = household();
    let (reply, calls) = run(&mut store, text);
    assert_eq!(calls, expected_calls, "{text}");
    assert!(
        reply.starts_with(&format!("Several todos match {phrase}")),
        "{reply}"
    );
    assert!(
        reply.contains("- ☐ #3 call mom\n- ☐ #4 call the bank"),
        "{reply}"
    );
    assert!(
        reply.contains("Which one do you mean?") && reply.contains(example),
        "{reply}"
    );
    assert_eq!(store.todos, household().todos);
}

#[rstest]
#[case("4", json!([["update-todo", {"id": 4, "completed": true}]]), "Marked #4 as done.")]
#[case("#3", json!([["update-todo", {"id": 3, "completed": true}]]), "Marked #3 as done.")]
#[case("I mean number 4", json!([["update-todo", {"id": 4, "completed": true}]]), "Marked #4 as done.")]
#[case("the second one", json!([["update-todo", {"id": 4, "completed": true}]]), "Marked #4 as done.")]
#[case("the first", json!([["update-todo", {"id": 3, "completed": true}]]), "Marked #3 as done.")]
#[case("mark todo 4 as done", json!([["update-todo", {"id": 4, "completed": true}]]), "Marked #4 as done.")]
#[case("2", json!([]), "Sorry, I didn't understand “2”")]
fn the_answer_to_which_one_finishes_the_request(
    #[case] answer: &str,
    #[case] expected_calls: Value,
    #[case] expected_text: &str,
) {
    let mut store = household();
    let mut history = Vec::new();
    let tools = todo_tools();
    let (question, _) = converse(
        &mut store,
        &mut history,
        &tools,
        "add a todo \"buy bread\" and cross off the call one",
    );
    assert!(question.contains("Which one do you mean?"), "{question}");
    let (text, calls) = converse(&mut store, &mut history, &tools, answer);
    assert_eq!(calls, expected_calls, "{answer}");
    assert!(text.starts_with(expected_text), "{answer}: {text}");
    assert_eq!(
        store.todos.len(),
        6,
        "the todo added first is not added again"
    );
}

#[test]
fn an_answer_to_which_one_renames_the_chosen_todo() {
    let mut store = household();
    let mut history = Vec::new();
    let tools = todo_tools();
    converse(
        &mut store,
        &mut history,
        &tools,
        "rename the call one to call dad",
    );
    let (text, calls) = converse(&mut store, &mut history, &tools, "3");
    assert_eq!(
        calls,
        json!([["update-todo", {"id": 3, "title": "call dad"}]])
    );
    assert_eq!(text, "Renamed #3 to **call dad**.");
}

#[rstest]
#[case(
    "I finished calling dad",
    json!([["get-todos", {"search": "calling dad"}], ["get-todos", {}]]),
    "None of your todos matches “calling dad”, so I didn't change anything. Say “list my \
     todos” to see them all."
)]
#[case(
    "delete the dentist one",
    json!([["get-todos", {"search": "dentist"}], ["get-todos", {}]]),
    "None of your todos matches “dentist”, so I didn't change anything. Say “list my todos” \
     to see them all."
)]
#[case(
    r#"delete "dentist""#,
    json!([["get-todos", {"search": "dentist"}]]),
    "I couldn't find a todo called “dentist”."
)]
fn a_phrase_that_fits_none_says_so(
    #[case] text: &str,
    #[case] expected_calls: Value,
    #[case] expected_text: &str,
) {
    let mut store = household();
    let (reply, calls) = run(&mut store, text);
    assert_eq!(calls, expected_calls, "{text}");
    assert_eq!(reply, expected_text, "{text}");
    assert_eq!(store.todos, household().todos);
}

// ---- a filtered set: one listing, then one call per todo ---------------------------------------

#[rstest]
#[case(
    "clear all my completed todos",
    json!([["get-todos", {"completed": true}], ["delete-todo", {"id": 1}], ["delete-todo", {"id": 3}]]),
    "Deleted 2 todos:\n\n- ✓ #1 buy milk\n- ✓ #3 call mom",
    &[2, 4, 5]
)]
#[case(
    "delete everything that's done",
    json!([["get-todos", {"completed": true}], ["delete-todo", {"id": 1}], ["delete-todo", {"id": 3}]]),
    "Deleted 2 todos:\n\n- ✓ #1 buy milk\n- ✓ #3 call mom",
    &[2, 4, 5]
)]
#[case(
    "delete all todos about milk",
    json!([["get-todos", {"search": "milk"}], ["delete-todo", {"id": 1}], ["delete-todo", {"id": 4}]]),
    "Deleted 2 todos:\n\n- ✓ #1 buy milk\n- ☐ #4 milk the cow",
    &[2, 3, 5]
)]
fn bulk_deletes_each_matching_todo(
    #[case] text: &str,
    #[case] expected_calls: Value,
    #[case] expected_text: &str,
    #[case] left: &[i64],
) {
    let mut store = Store::with(&[
        ("buy milk", true),
        ("prep the demo", false),
        ("call mom", true),
        ("milk the cow", false),
        ("water the plants", false),
    ]);
    let (reply, calls) = run(&mut store, text);
    assert_eq!(calls, expected_calls, "{text}");
    assert_eq!(reply, expected_text, "{text}");
    let ids: Vec<i64> = store.todos.iter().map(|t| t.0).collect();
    assert_eq!(ids, left);
}

#[test]
fn mark_all_as_done_changes_only_the_open_ones() {
    let mut store = Store::with(&[
        ("buy milk", true),
        ("prep the demo", false),
        ("call mom", false),
    ]);
    let (text, calls) = run(&mut store, "mark all as done");
    assert_eq!(
        calls,
        json!([
            ["get-todos", {"completed": false}],
            ["update-todo", {"id": 2, "completed": true}],
            ["update-todo", {"id": 3, "completed": true}]
        ])
    );
    assert_eq!(
        text,
        "Marked 2 todos as done:\n\n- ✓ #2 prep the demo\n- ✓ #3 call mom"
    );
    assert!(store.todos.iter().all(|t| t.2));
}

#[test]
fn complete_all_my_todos_about_milk() {
    let mut store = Store::with(&[
        ("buy milk", false),
        ("oat milk", true),
        ("call mom", false),
        ("milk the cow", false),
    ]);
    let (text, calls) = run(&mut store, "complete all my todos about milk");
    assert_eq!(
        calls,
        json!([
            ["get-todos", {"completed": false, "search": "milk"}],
            ["update-todo", {"id": 1, "completed": true}],
            ["update-todo", {"id": 4, "completed": true}]
        ])
    );
    assert_eq!(
        text,
        "Marked 2 todos as done:\n\n- ✓ #1 buy milk\n- ✓ #4 milk the cow"
    );
    assert!(!store.todos[2].2);
}

#[test]
fn with_only_toggle_a_bulk_change_toggles_the_ones_that_need_it() {
    let tools = specs(&["get-todos", "toggle-todo"]);
    let mut store = Store::with(&[("buy milk", true), ("call mom", false)]);
    let (text, calls) = converse(&mut store, &mut Vec::new(), &tools, "check off everything");
    assert_eq!(
        calls,
        json!([["get-todos", {"completed": false}], ["toggle-todo", {"id": 2}]])
    );
    assert_eq!(text, "Marked 1 todo as done:\n\n- ✓ #2 call mom");
    assert!(store.todos.iter().all(|t| t.2));
}

#[rstest]
#[case(
    "delete everything that's done",
    "You have no completed todos, so there is nothing to delete."
)]
#[case(
    "delete all todos about bread",
    "None of your todos match “bread”, so there is nothing to delete."
)]
#[case(
    "mark all as not done",
    "You have no completed todos, so there is nothing to mark as not done."
)]
fn bulk_with_nothing_to_do_says_so(#[case] text: &str, #[case] expected: &str) {
    let mut store = Store::with(&[("buy milk", false)]);
    let (reply, calls) = run(&mut store, text);
    assert_eq!(calls.as_array().map(Vec::len), Some(1), "{calls}");
    assert_eq!(reply, expected);
}

#[test]
fn a_bulk_change_then_a_listing_shows_the_result() {
    let mut store = Store::with(&[("buy milk", true), ("call mom", false)]);
    let (text, calls) = run(&mut store, "delete all completed todos, then list my todos");
    assert_eq!(
        calls,
        json!([["get-todos", {"completed": true}], ["delete-todo", {"id": 1}], ["get-todos", {}]])
    );
    assert_eq!(
        text,
        "Deleted 1 todo:\n\n- ✓ #1 buy milk\n\nYou have 1 todo:\n\n- ☐ #2 call mom"
    );
}

#[test]
fn a_bulk_change_is_bounded() {
    let titles: Vec<String> = (1..=55).map(|n| format!("chore {n}")).collect();
    let todos: Vec<(&str, bool)> = titles.iter().map(|t| (t.as_str(), false)).collect();
    let mut store = Store::with(&todos);
    let (text, calls) = run(&mut store, "mark all as done");
    assert_eq!(calls.as_array().map(Vec::len), Some(51));
    assert!(text.starts_with("Marked 50 todos as done:"), "{text}");
    assert!(
        text.ends_with(
            "5 more match; I mark as done at most 50 at a time, so ask again for the rest."
        ),
        "{text}"
    );
    assert_eq!(store.todos.iter().filter(|t| t.2).count(), 50);
}

#[test]
fn a_failed_bulk_call_is_reported_with_the_rest() {
    let messages = [
        Message::user_text("delete all completed todos"),
        Message {
            role: Role::Assistant,
            content: vec![Block::ToolUse {
                id: "offline-1".into(),
                name: "get-todos".into(),
                input: json!({"completed": true}),
            }],
        },
        Message {
            role: Role::User,
            content: vec![Block::ToolResult {
                tool_use_id: "offline-1".into(),
                content: json!({"todos": [
                    {"id": 1, "title": "a", "completed": true},
                    {"id": 2, "title": "b", "completed": true}
                ]})
                .to_string(),
                is_error: false,
            }],
        },
    ];
    let reply = decide(&messages, &todo_tools());
    assert_eq!(
        calls_of(&reply),
        json!([["delete-todo", {"id": 1}], ["delete-todo", {"id": 2}]])
    );
    let mut messages = messages.to_vec();
    messages.push(Message {
        role: Role::Assistant,
        content: reply.content,
    });
    messages.push(Message {
        role: Role::User,
        content: vec![
            Block::ToolResult {
                tool_use_id: "offline-2".into(),
                content: json!({"todo": {"id": 1, "title": "a", "completed": true}}).to_string(),
                is_error: false,
            },
            Block::ToolResult {
                tool_use_id: "offline-3".into(),
                content: "The person declined this action.".into(),
                is_error: true,
            },
        ],
    });
    assert_eq!(
        text_of(&decide(&messages, &todo_tools())),
        "Deleted 1 todo:\n\n- ✓ #1 a\n\nI couldn't delete #2: The person declined this action."
    );
}

// ---- what it cannot do -------------------------------------------------------------------------

#[test]
fn someone_elses_todos_are_declined_in_one_sentence() {
    let reply = first_reply("list all todos of every user");
    assert_eq!(calls_of(&reply), json!([]));
    assert_eq!(
        text_of(&reply),
        "I can only see and change your own todos, not the todos of every user; say “list my \
         todos” to see yours."
    );
}

#[rstest]
#[case("what's the weather", "list my todos")]
#[case("how do I remove a virus?", "delete the milk todo")]
#[case("finish the report", "mark the milk todo as done")]
fn a_request_it_cannot_read_gets_one_line_and_one_example(
    #[case] text: &str,
    #[case] example: &str,
) {
    let reply = text_of(&first_reply(text));
    assert!(!reply.contains('\n'), "{reply}");
    assert!(
        reply.starts_with(&format!("Sorry, I didn't understand “{text}”")),
        "{reply}"
    );
    assert!(reply.contains(&format!("like “{example}”")), "{reply}");
    assert_eq!(
        reply.matches('“').count(),
        3,
        "one example and “help”: {reply}"
    );
}
