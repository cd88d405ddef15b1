//! The first step: each phrasing (and close paraphrases) to the exact tool calls.

use rstest::rstest;

use super::*;

// ---- first step: phrasing → tool calls ---------------------------------------------------------

#[rstest]
// list
#[case("list my todos", r#"[["get-todos", {}]]"#)]
#[case("show my todos", r#"[["get-todos", {}]]"#)]
#[case("what are my todos?", r#"[["get-todos", {}]]"#)]
#[case("show me everything", r#"[["get-todos", {}]]"#)]
#[case("what's on my list", r#"[["get-todos", {}]]"#)]
#[case("What’s on my list?", r#"[["get-todos", {}]]"#)]
#[case("LIST MY TODOS!", r#"[["get-todos", {}]]"#)]
#[case("Please list my todos.", r#"[["get-todos", {}]]"#)]
#[case("can you show my todos, please?", r#"[["get-todos", {}]]"#)]
#[case("could you please show me my to do list", r#"[["get-todos", {}]]"#)]
#[case("todos", r#"[["get-todos", {}]]"#)]
#[case("how many todos do I have?", r#"[["get-todos", {}]]"#)]
#[case("let's see my todos", r#"[["get-todos", {}]]"#)]
#[case("check my todos", r#"[["get-todos", {}]]"#)]
#[case("anything left?", r#"[["get-todos", {"completed": false}]]"#)]
#[case("hey there, what's left?", r#"[["get-todos", {"completed": false}]]"#)]
#[case("what have I done", r#"[["get-todos", {"completed": true}]]"#)]
// remaining / completed
#[case("what's left", r#"[["get-todos", {"completed": false}]]"#)]
#[case("what is left to do", r#"[["get-todos", {"completed": false}]]"#)]
#[case("show open todos", r#"[["get-todos", {"completed": false}]]"#)]
#[case(
    "what do I still have to do",
    r#"[["get-todos", {"completed": false}]]"#
)]
#[case(
    "Can you tell me what's left?",
    r#"[["get-todos", {"completed": false}]]"#
)]
#[case("show my pending tasks", r#"[["get-todos", {"completed": false}]]"#)]
#[case("show completed todos", r#"[["get-todos", {"completed": true}]]"#)]
#[case("show done todos", r#"[["get-todos", {"completed": true}]]"#)]
#[case("what have I finished?", r#"[["get-todos", {"completed": true}]]"#)]
// search
#[case("find todos about milk", r#"[["get-todos", {"search": "milk"}]]"#)]
#[case("search for demo", r#"[["get-todos", {"search": "demo"}]]"#)]
#[case("search my todos for milk", r#"[["get-todos", {"search": "milk"}]]"#)]
#[case(r#"find "buy milk""#, r#"[["get-todos", {"search": "buy milk"}]]"#)]
#[case(
    "show todos about the demo",
    r#"[["get-todos", {"search": "the demo"}]]"#
)]
#[case(
    "do I have any todos about milk?",
    r#"[["get-todos", {"search": "milk"}]]"#
)]
#[case(
    "find open todos about milk",
    r#"[["get-todos", {"completed": false, "search": "milk"}]]"#
)]
#[case("find my todos", r#"[["get-todos", {}]]"#)]
// add
#[case(
    r#"add a todo "prep the demo""#,
    r#"[["create-todo", {"title": "prep the demo"}]]"#
)]
#[case(
    "add a todo “prep the demo”",
    r#"[["create-todo", {"title": "prep the demo"}]]"#
)]
#[case(r#"add "buy milk""#, r#"[["create-todo", {"title": "buy milk"}]]"#)]
#[case(
    "please add 'water plants'",
    r#"[["create-todo", {"title": "water plants"}]]"#
)]
#[case(
    "add buy milk to my todos",
    r#"[["create-todo", {"title": "buy milk"}]]"#
)]
#[case("add buy milk", r#"[["create-todo", {"title": "buy milk"}]]"#)]
#[case(
    "add bread and butter",
    r#"[["create-todo", {"title": "bread and butter"}]]"#
)]
#[case(
    "can you add call mom and dad",
    r#"[["create-todo", {"title": "call mom and dad"}]]"#
)]
#[case(
    "create a todo to call mom",
    r#"[["create-todo", {"title": "call mom"}]]"#
)]
#[case(
    "make a todo to call mom",
    r#"[["create-todo", {"title": "call mom"}]]"#
)]
#[case(
    "remind me to water the plants",
    r#"[["create-todo", {"title": "water the plants"}]]"#
)]
#[case(
    "Add a todo: Prep the Demo",
    r#"[["create-todo", {"title": "Prep the Demo"}]]"#
)]
#[case(
    "new todo: call the bank",
    r#"[["create-todo", {"title": "call the bank"}]]"#
)]
#[case(
    "add to my list: buy milk",
    r#"[["create-todo", {"title": "buy milk"}]]"#
)]
#[case(
    r#"add a todo "fix bug #2; then ship" to my list"#,
    r#"[["create-todo", {"title": "fix bug #2; then ship"}]]"#
)]
#[case(
    r#"add todos "a" and "b""#,
    r#"[["create-todo", {"title": "a"}], ["create-todo", {"title": "b"}]]"#
)]
#[case(
    r#"add "a", "b" and "c""#,
    r#"[["create-todo", {"title": "a"}], ["create-todo", {"title": "b"}], ["create-todo", {"title": "c"}]]"#
)]
// done / not done
#[case(
    "mark todo 1 as done",
    r#"[["update-todo", {"id": 1, "completed": true}]]"#
)]
#[case("mark 1 done", r#"[["update-todo", {"id": 1, "completed": true}]]"#)]
#[case(
    "Mark #5 as complete.",
    r#"[["update-todo", {"id": 5, "completed": true}]]"#
)]
#[case(
    "complete todo 2",
    r#"[["update-todo", {"id": 2, "completed": true}]]"#
)]
#[case("I finished #3", r#"[["update-todo", {"id": 3, "completed": true}]]"#)]
#[case(
    "I've just completed todo 3",
    r#"[["update-todo", {"id": 3, "completed": true}]]"#
)]
#[case("check off 4", r#"[["update-todo", {"id": 4, "completed": true}]]"#)]
#[case("tick 6 off", r#"[["update-todo", {"id": 6, "completed": true}]]"#)]
#[case("#3 is done", r#"[["update-todo", {"id": 3, "completed": true}]]"#)]
#[case(
    "set todo 2 as done",
    r#"[["update-todo", {"id": 2, "completed": true}]]"#
)]
#[case(
    "change todo 2 to done",
    r#"[["update-todo", {"id": 2, "completed": true}]]"#
)]
#[case(
    "mark todo 1 as not done",
    r#"[["update-todo", {"id": 1, "completed": false}]]"#
)]
#[case("undo todo 1", r#"[["update-todo", {"id": 1, "completed": false}]]"#)]
#[case("reopen 2", r#"[["update-todo", {"id": 2, "completed": false}]]"#)]
#[case("uncheck 3", r#"[["update-todo", {"id": 3, "completed": false}]]"#)]
#[case(
    "I'm done with #3",
    r#"[["update-todo", {"id": 3, "completed": true}]]"#
)]
#[case(
    "mark 7 as open",
    r#"[["update-todo", {"id": 7, "completed": false}]]"#
)]
#[case(
    "mark todos 1 and 2 as done",
    r#"[["update-todo", {"id": 1, "completed": true}], ["update-todo", {"id": 2, "completed": true}]]"#
)]
// rename
#[case(
    r#"rename todo 2 to "buy oat milk""#,
    r#"[["update-todo", {"id": 2, "title": "buy oat milk"}]]"#
)]
#[case(
    "change todo 2 to buy bread",
    r#"[["update-todo", {"id": 2, "title": "buy bread"}]]"#
)]
#[case(
    "rename todo 2 to go to bed",
    r#"[["update-todo", {"id": 2, "title": "go to bed"}]]"#
)]
#[case(
    "change the title of todo 3 to call dad",
    r#"[["update-todo", {"id": 3, "title": "call dad"}]]"#
)]
// toggle
#[case("toggle todo 3", r#"[["toggle-todo", {"id": 3}]]"#)]
// delete
#[case("delete todo 1", r#"[["delete-todo", {"id": 1}]]"#)]
#[case("remove #2", r#"[["delete-todo", {"id": 2}]]"#)]
#[case("get rid of todo 9", r#"[["delete-todo", {"id": 9}]]"#)]
#[case(
    "delete 3 4",
    r#"[["delete-todo", {"id": 3}], ["delete-todo", {"id": 4}]]"#
)]
#[case("delete todo 1 from my list", r#"[["delete-todo", {"id": 1}]]"#)]
#[case(
    "delete todos 3 and 4",
    r#"[["delete-todo", {"id": 3}], ["delete-todo", {"id": 4}]]"#
)]
#[case(
    "delete todos 3, 4 and 5",
    r#"[["delete-todo", {"id": 3}], ["delete-todo", {"id": 4}], ["delete-todo", {"id": 5}]]"#
)]
// by title: look up first
#[case(
    "delete the todo called prep the demo",
    r#"[["get-todos", {"search": "prep the demo"}]]"#
)]
#[case(r#"delete "buy milk""#, r#"[["get-todos", {"search": "buy milk"}]]"#)]
#[case(
    r#"mark "buy milk" as done"#,
    r#"[["get-todos", {"search": "buy milk"}]]"#
)]
#[case("mark buy milk as done", r#"[["get-todos", {"search": "buy milk"}]]"#)]
#[case(
    r#"rename "buy milk" to "buy oat milk""#,
    r#"[["get-todos", {"search": "buy milk"}]]"#
)]
// several in one message
#[case(
    r#"add "a" and mark 2 as done"#,
    r#"[["create-todo", {"title": "a"}], ["update-todo", {"id": 2, "completed": true}]]"#
)]
#[case(
    "add milk, then list my todos",
    r#"[["create-todo", {"title": "milk"}]]"#
)]
#[case(
    "list my todos and then add milk",
    r#"[["get-todos", {}], ["create-todo", {"title": "milk"}]]"#
)]
#[case(
    "mark 1 as done; delete todo 2",
    r#"[["update-todo", {"id": 1, "completed": true}], ["delete-todo", {"id": 2}]]"#
)]
#[case(
    "add milk\ndelete todo 3",
    r#"[["create-todo", {"title": "milk"}], ["delete-todo", {"id": 3}]]"#
)]
#[case(
    r#"delete "buy milk" and "call mom""#,
    r#"[["get-todos", {"search": "buy milk"}], ["get-todos", {"search": "call mom"}]]"#
)]
#[case(
    r#"add "oat milk" and mark "oat milk" as done"#,
    r#"[["create-todo", {"title": "oat milk"}]]"#
)]
#[case(
    r#"delete "milk", then list my todos"#,
    r#"[["get-todos", {"search": "milk"}]]"#
)]
#[case("Hi! Please list my todos.", r#"[["get-todos", {}]]"#)]
#[case("delete todo 3. Thanks!", r#"[["delete-todo", {"id": 3}]]"#)]
#[case(
    "mark 1 and 2 as done and delete 3",
    r#"[["update-todo", {"id": 1, "completed": true}], ["update-todo", {"id": 2, "completed": true}], ["delete-todo", {"id": 3}]]"#
)]
// a word or phrase from one todo's title
#[case(
    "please remove the demo todo",
    r#"[["get-todos", {"search": "demo"}]]"#
)]
#[case("remove the demo todo", r#"[["get-todos", {"search": "demo"}]]"#)]
#[case("delete the demo one", r#"[["get-todos", {"search": "demo"}]]"#)]
#[case("drop the demo todo", r#"[["get-todos", {"search": "demo"}]]"#)]
#[case("get rid of the demo todo", r#"[["get-todos", {"search": "demo"}]]"#)]
#[case("scrap the demo task", r#"[["get-todos", {"search": "demo"}]]"#)]
#[case("cancel the dentist one", r#"[["get-todos", {"search": "dentist"}]]"#)]
#[case(
    "remove my dentist reminder",
    r#"[["get-todos", {"search": "dentist"}]]"#
)]
#[case("delete the one about milk", r#"[["get-todos", {"search": "milk"}]]"#)]
#[case(
    "delete the todo with milk in it",
    r#"[["get-todos", {"search": "milk"}]]"#
)]
#[case(
    "remove the milk one from my list",
    r#"[["get-todos", {"search": "milk"}]]"#
)]
#[case(
    "trash the todo about the demo",
    r#"[["get-todos", {"search": "the demo"}]]"#
)]
#[case(
    "Could you delete the demo todo, please?",
    r#"[["get-todos", {"search": "demo"}]]"#
)]
#[case(
    "I finished calling mom",
    r#"[["get-todos", {"search": "calling mom"}]]"#
)]
#[case(
    "finished calling mom",
    r#"[["get-todos", {"search": "calling mom"}]]"#
)]
#[case(
    "I'm done with calling mom",
    r#"[["get-todos", {"search": "calling mom"}]]"#
)]
#[case(
    "I’ve just finished the bank one",
    r#"[["get-todos", {"search": "bank"}]]"#
)]
#[case(
    "I completed the todo about milk",
    r#"[["get-todos", {"search": "milk"}]]"#
)]
#[case("cross off the bank one", r#"[["get-todos", {"search": "bank"}]]"#)]
#[case("tick off the bank one", r#"[["get-todos", {"search": "bank"}]]"#)]
#[case("check off the bank one", r#"[["get-todos", {"search": "bank"}]]"#)]
#[case("cross the bank one off", r#"[["get-todos", {"search": "bank"}]]"#)]
#[case("crossed off buy milk", r#"[["get-todos", {"search": "buy milk"}]]"#)]
#[case("I checked off buy milk", r#"[["get-todos", {"search": "buy milk"}]]"#)]
#[case("mark the bank one as done", r#"[["get-todos", {"search": "bank"}]]"#)]
#[case(
    "mark the bank one as not done",
    r#"[["get-todos", {"search": "bank"}]]"#
)]
#[case("the bank one is done", r#"[["get-todos", {"search": "bank"}]]"#)]
#[case(
    "complete the todo about milk",
    r#"[["get-todos", {"search": "milk"}]]"#
)]
#[case("finish the milk one", r#"[["get-todos", {"search": "milk"}]]"#)]
#[case("reopen the bank one", r#"[["get-todos", {"search": "bank"}]]"#)]
#[case(
    "uncheck the todo called buy milk",
    r#"[["get-todos", {"search": "buy milk"}]]"#
)]
#[case("toggle the bank one", r#"[["get-todos", {"search": "bank"}]]"#)]
#[case(
    "rename the plants one to water the ferns",
    r#"[["get-todos", {"search": "plants"}]]"#
)]
#[case(
    "retitle the plants one to water the ferns",
    r#"[["get-todos", {"search": "plants"}]]"#
)]
#[case(
    "change the plants one to water the ferns",
    r#"[["get-todos", {"search": "plants"}]]"#
)]
#[case(
    r#"rename the todo about plants to "water the ferns""#,
    r#"[["get-todos", {"search": "plants"}]]"#
)]
#[case(
    "rename the plants todo as water the ferns",
    r#"[["get-todos", {"search": "plants"}]]"#
)]
#[case(
    "change the plants one to done",
    r#"[["get-todos", {"search": "plants"}]]"#
)]
// a filtered set: one listing first
#[case(
    "clear all my completed todos",
    r#"[["get-todos", {"completed": true}]]"#
)]
#[case(
    "Please clear all my completed todos.",
    r#"[["get-todos", {"completed": true}]]"#
)]
#[case(
    "delete everything that's done",
    r#"[["get-todos", {"completed": true}]]"#
)]
#[case(
    "delete everything that is done",
    r#"[["get-todos", {"completed": true}]]"#
)]
#[case(
    "delete all completed todos",
    r#"[["get-todos", {"completed": true}]]"#
)]
#[case("delete all done todos", r#"[["get-todos", {"completed": true}]]"#)]
#[case(
    "delete every completed task",
    r#"[["get-todos", {"completed": true}]]"#
)]
#[case("remove finished tasks", r#"[["get-todos", {"completed": true}]]"#)]
#[case("clear completed", r#"[["get-todos", {"completed": true}]]"#)]
#[case(
    "clean up my completed todos",
    r#"[["get-todos", {"completed": true}]]"#
)]
#[case(
    "get rid of everything I've finished",
    r#"[["get-todos", {"completed": true}]]"#
)]
#[case(
    "delete all my todos that are done",
    r#"[["get-todos", {"completed": true}]]"#
)]
#[case(
    "remove all the completed ones",
    r#"[["get-todos", {"completed": true}]]"#
)]
#[case("delete all open todos", r#"[["get-todos", {"completed": false}]]"#)]
#[case("delete all my todos", r#"[["get-todos", {}]]"#)]
#[case("delete everything", r#"[["get-todos", {}]]"#)]
#[case("clear my list", r#"[["get-todos", {}]]"#)]
#[case(
    "delete all todos about milk",
    r#"[["get-todos", {"search": "milk"}]]"#
)]
#[case("delete all milk todos", r#"[["get-todos", {"search": "milk"}]]"#)]
#[case(
    r#"delete every todo called "test""#,
    r#"[["get-todos", {"search": "test"}]]"#
)]
#[case("mark all as done", r#"[["get-todos", {"completed": false}]]"#)]
#[case("mark everything as done", r#"[["get-todos", {"completed": false}]]"#)]
#[case(
    "mark all my todos as complete",
    r#"[["get-todos", {"completed": false}]]"#
)]
#[case(
    "mark all open todos as done",
    r#"[["get-todos", {"completed": false}]]"#
)]
#[case("check off everything", r#"[["get-todos", {"completed": false}]]"#)]
#[case("tick off all my todos", r#"[["get-todos", {"completed": false}]]"#)]
#[case("complete all my todos", r#"[["get-todos", {"completed": false}]]"#)]
#[case(
    "complete all my todos about milk",
    r#"[["get-todos", {"completed": false, "search": "milk"}]]"#
)]
#[case(
    "mark all todos about milk as done",
    r#"[["get-todos", {"completed": false, "search": "milk"}]]"#
)]
#[case("mark all as not done", r#"[["get-todos", {"completed": true}]]"#)]
#[case("uncheck everything", r#"[["get-todos", {"completed": true}]]"#)]
#[case(
    "reopen all completed todos",
    r#"[["get-todos", {"completed": true}]]"#
)]
#[case("toggle all", r#"[["get-todos", {}]]"#)]
#[case(
    "change everything to done",
    r#"[["get-todos", {"completed": false}]]"#
)]
#[case(
    "add milk and then mark all as done",
    r#"[["create-todo", {"title": "milk"}]]"#
)]
#[case(
    "delete all completed todos, then list my todos",
    r#"[["get-todos", {"completed": true}]]"#
)]
// more close variants
#[case("erase todo 4", r#"[["delete-todo", {"id": 4}]]"#)]
#[case("drop #4", r#"[["delete-todo", {"id": 4}]]"#)]
#[case("ditch todo 4", r#"[["delete-todo", {"id": 4}]]"#)]
#[case("remove number 4", r#"[["delete-todo", {"id": 4}]]"#)]
#[case("tick off 2", r#"[["update-todo", {"id": 2, "completed": true}]]"#)]
#[case("cross off #2", r#"[["update-todo", {"id": 2, "completed": true}]]"#)]
#[case("finished 2", r#"[["update-todo", {"id": 2, "completed": true}]]"#)]
#[case("done with 2", r#"[["update-todo", {"id": 2, "completed": true}]]"#)]
#[case(
    "todo 2 is finished",
    r#"[["update-todo", {"id": 2, "completed": true}]]"#
)]
#[case(
    "mark 2 as incomplete",
    r#"[["update-todo", {"id": 2, "completed": false}]]"#
)]
#[case(
    "retitle todo 2 to buy bread",
    r#"[["update-todo", {"id": 2, "title": "buy bread"}]]"#
)]
#[case("flip todo 2", r#"[["toggle-todo", {"id": 2}]]"#)]
#[case("show my finished todos", r#"[["get-todos", {"completed": true}]]"#)]
#[case("what do I have left?", r#"[["get-todos", {"completed": false}]]"#)]
#[case("search for the bank", r#"[["get-todos", {"search": "bank"}]]"#)]
#[case("look up milk", r#"[["get-todos", {"search": "milk"}]]"#)]
#[case(
    "don't let me forget to call mom",
    r#"[["create-todo", {"title": "call mom"}]]"#
)]
#[case(
    "put call the bank on my list",
    r#"[["create-todo", {"title": "call the bank"}]]"#
)]
fn first_step_calls(#[case] text: &str, #[case] expected: &str) {
    let reply = first_reply(text);
    let expected: Value = serde_json::from_str(expected).expect("test case is JSON");
    assert_eq!(calls_of(&reply), expected, "for {text:?}: {reply:?}");
    assert_eq!(reply.stop_reason, StopReason::ToolUse);
    assert!(text_of(&reply).is_empty());
}

#[rstest]
#[case("show bob's todos", &["own todos", "bob"])]
#[case("delete alice's todos", &["own todos", "alice"])]
#[case("show me the todos of user carol", &["own todos", "carol"])]
#[case("list everyone's todos", &["own todos", "everyone"])]
#[case("what's on bob's list?", &["own todos", "bob"])]
#[case("finish the report", &["didn't understand"])]
#[case("mark it as done", &["Which todo"])]
#[case("what's the weather", &["didn't understand", "what's the weather", "offline model"])]
#[case("asdfgh", &["didn't understand", "offline model", "list my todos"])]
#[case("", &["offline model", "add a todo"])]
#[case("   ", &["offline model"])]
#[case("please", &["didn't understand"])]
#[case("rename all my todos to x", &["one todo at a time"])]
#[case("rename todos 1 and 2 to x", &["one todo at a time"])]
#[case("delete it", &["Which todo"])]
#[case("add a todo", &["What should the new todo say"])]
#[case("help", &["offline model", "mark todo 1 as done"])]
#[case("hello", &["Hello", "list my todos"])]
#[case("thanks!", &["welcome"])]
// someone else's todos: one sentence, never garbled
#[case("list all todos of every user", &["own todos", "the todos of every user;", "list my todos"])]
#[case("show the todos of all users", &["own todos", "the todos of all users;"])]
#[case("show me everyone's todos", &["own todos", "the todos of everyone;"])]
#[case("what are other people's todos?", &["own todos", "the todos of other people;"])]
#[case("delete every user's todos", &["own todos", "the todos of every user;"])]
#[case("show todos for user dave", &["own todos", "dave's;"])]
#[case("mark bob's todos as done", &["own todos", "bob's;"])]
#[case("list todos belonging to alice", &["own todos", "alice's;"])]
#[case("does anyone else have todos?", &["own todos", "the todos of anyone else;"])]
// vague: a question, no change
#[case("delete both", &["Which todo"])]
#[case("delete all of them", &["Which todo"])]
#[case("mark them all as done", &["Which todo"])]
#[case("remove the second one", &["Which todo"])]
#[case("mark as done", &["Which todo"])]
#[case("finish the report", &["didn't understand", "mark the milk todo as done"])]
#[case("how do I remove a virus", &["didn't understand", "delete the milk todo"])]
#[case("book a flight to Paris", &["didn't understand", "list my todos"])]
fn text_only_replies(#[case] text: &str, #[case] expected: &[&str]) {
    let reply = first_reply(text);
    assert_eq!(calls_of(&reply), json!([]), "for {text:?}");
    assert_eq!(reply.stop_reason, StopReason::EndTurn);
    let reply = text_of(&reply);
    for part in expected {
        assert!(reply.contains(part), "{text:?} → {reply:?} lacks {part:?}");
    }
}
