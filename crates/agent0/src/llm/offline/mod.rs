//! The built-in offline model (ARCHITECTURE §1): used when no LLM provider is configured. It is a
//! deterministic interpreter of plain-language todo requests that speaks the same [`Model`]
//! protocol as a real model: it answers with `ToolUse` blocks for todo0's MCP tools (`get-todos`,
//! `create-todo`, `update-todo`, `toggle-todo`, `delete-todo`) and, once the results are in, with
//! a Markdown summary.
//!
//! It keeps no state. Each call re-reads the conversation: the last user message with text is the
//! request; its plan is replayed against the tool calls and results that follow it, and the next
//! step is whatever the plan does with those results. The same conversation always gets the same
//! reply (no randomness, no clock).

mod change;
mod follow_up;
mod github;
mod parse;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Value, json};

use self::change::{Action, act, bulk};
use self::parse::{Intent, ListFilter, Say};
use super::{
    Block, LlmError, Message, Model, ModelInfo, ModelReply, ModelRequest, Role, StopReason,
    TextSink, ToolSpec,
};

/// [`ModelInfo::provider`] of the offline model.
pub const PROVIDER: &str = "offline";
/// [`ModelInfo::model`] of the offline model.
pub const MODEL: &str = "secure-agent-offline-1";

/// The built-in offline model: understands simple todo requests, calls todo0's tools.
#[derive(Debug, Clone, Copy, Default)]
pub struct OfflineModel;

impl OfflineModel {
    /// The offline model.
    pub fn new() -> Self {
        Self
    }
}

#[async_trait]
impl Model for OfflineModel {
    fn info(&self) -> ModelInfo {
        ModelInfo {
            provider: PROVIDER.to_owned(),
            model: MODEL.to_owned(),
        }
    }

    async fn respond(
        &self,
        request: ModelRequest<'_>,
        on_text: TextSink<'_>,
    ) -> Result<ModelReply, LlmError> {
        let reply = decide(request.messages, request.tools);
        for block in &reply.content {
            if let Block::Text { text } = block {
                on_text(text);
            }
        }
        Ok(reply)
    }
}

// ---- the conversation ------------------------------------------------------------------------

/// The reply to `messages` given the offered `tools`.
fn decide(messages: &[Message], tools: &[ToolSpec]) -> ModelReply {
    let Some(anchor) = messages
        .iter()
        .rposition(|m| m.role == Role::User && !m.text().trim().is_empty())
    else {
        return text_reply(help_text());
    };
    let request = messages[anchor].text();
    if let Some(ask) = github::parse(&request) {
        return github::reply(&ask, &messages[anchor + 1..], tools);
    }
    let intents = follow_up::answer(messages, anchor).or_else(|| parse::parse(&request));
    let Some(intents) = intents else {
        return text_reply(if request.trim().is_empty() {
            help_text()
        } else {
            not_understood(&request)
        });
    };
    let toolbox = Toolbox { specs: tools };
    let after = &messages[anchor + 1..];
    let mut rounds = after
        .iter()
        .enumerate()
        .filter(|(_, m)| m.role == Role::Assistant && tool_uses(m).next().is_some());
    let mut results: Vec<Vec<Outcome<'_>>> = vec![Vec::new(); intents.len()];
    loop {
        let calls = match plan_round(&intents, &results, &toolbox) {
            Round::Finished(paragraphs) => return text_reply(paragraphs.join("\n\n")),
            Round::Calls(calls) => calls,
        };
        let Some((at, message)) = rounds.next() else {
            return tool_use_reply(calls, messages);
        };
        let uses: Vec<(&str, &str)> = tool_uses(message).collect();
        let is_same_plan = uses.len() == calls.len()
            && uses
                .iter()
                .zip(&calls)
                .all(|((_, name), (_, call))| call.tool.is_named(name));
        if !is_same_plan {
            return text_reply(LOST_TRACK.to_owned());
        }
        for ((id, _), (task, _)) in uses.iter().zip(&calls) {
            results[*task].push(find_result(&after[at + 1..], id));
        }
    }
}

const LOST_TRACK: &str = "I lost track of this request: the tool calls in the conversation are \
                          not the ones I planned. Please ask again.";

fn text_reply(text: String) -> ModelReply {
    ModelReply {
        content: vec![Block::Text { text }],
        stop_reason: StopReason::EndTurn,
    }
}

/// The calls as `ToolUse` blocks, with ids `offline-<n>` counted across the conversation.
fn tool_use_reply(calls: Vec<(usize, Call)>, messages: &[Message]) -> ModelReply {
    let used = messages.iter().flat_map(tool_uses).count();
    let content = calls
        .into_iter()
        .enumerate()
        .map(|(n, (_, call))| Block::ToolUse {
            id: format!("offline-{}", used + n + 1),
            name: call.name,
            input: call.input,
        })
        .collect();
    ModelReply {
        content,
        stop_reason: StopReason::ToolUse,
    }
}

/// The `(id, name)` of each tool call in `message`.
fn tool_uses(message: &Message) -> impl Iterator<Item = (&str, &str)> {
    message.content.iter().filter_map(|b| match b {
        Block::ToolUse { id, name, .. } => Some((id.as_str(), name.as_str())),
        _ => None,
    })
}

/// The result for call `id` in the messages after the call.
fn find_result<'m>(after: &'m [Message], id: &str) -> Outcome<'m> {
    after
        .iter()
        .filter(|m| m.role == Role::User)
        .flat_map(|m| &m.content)
        .find_map(|b| match b {
            Block::ToolResult {
                tool_use_id,
                content,
                is_error,
            } if tool_use_id == id => Some(Outcome {
                content: crate::agent::unwrap_tool_result(content),
                is_error: *is_error,
            }),
            _ => None,
        })
        .unwrap_or(Outcome {
            content: "no result came back for this tool call",
            is_error: true,
        })
}

// ---- tools -----------------------------------------------------------------------------------

/// todo0's tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tool {
    GetTodos,
    CreateTodo,
    UpdateTodo,
    ToggleTodo,
    DeleteTodo,
}

impl Tool {
    fn bare_name(self) -> &'static str {
        match self {
            Self::GetTodos => "get-todos",
            Self::CreateTodo => "create-todo",
            Self::UpdateTodo => "update-todo",
            Self::ToggleTodo => "toggle-todo",
            Self::DeleteTodo => "delete-todo",
        }
    }

    /// Whether `name` is this tool, bare or namespaced (`todo0__get-todos`).
    fn is_named(self, name: &str) -> bool {
        name == self.bare_name() || namespace_of(name, self.bare_name()).is_some()
    }
}

/// The namespace in front of `bare` when `name` is `<namespace><separator><bare>`.
fn namespace_of<'n>(name: &'n str, bare: &str) -> Option<&'n str> {
    let prefix = name.strip_suffix(bare)?;
    let last = prefix.chars().last()?;
    (!last.is_alphanumeric()).then_some(prefix)
}

/// The tools offered in this request.
struct Toolbox<'a> {
    specs: &'a [ToolSpec],
}

impl Toolbox<'_> {
    /// The offered name of `tool`: exact first, else namespaced, preferring a todo namespace.
    fn name(&self, tool: Tool) -> Option<&str> {
        let bare = tool.bare_name();
        if let Some(spec) = self.specs.iter().find(|s| s.name == bare) {
            return Some(&spec.name);
        }
        self.specs
            .iter()
            .filter_map(|s| namespace_of(&s.name, bare).map(|ns| (s, ns)))
            .min_by_key(|(_, ns)| !ns.to_lowercase().contains("todo"))
            .map(|(s, _)| s.name.as_str())
    }

    fn has(&self, tool: Tool) -> bool {
        self.name(tool).is_some()
    }

    /// A call of `tool`, or an honest explanation when it is not offered.
    fn call(&self, tool: Tool, input: Value, purpose: &str) -> Step {
        match self.name(tool) {
            Some(name) => Step::Call(Call {
                tool,
                name: name.to_owned(),
                input,
            }),
            None => Step::Finish(missing_tool(tool, purpose)),
        }
    }
}

fn missing_tool(tool: Tool, purpose: &str) -> String {
    format!(
        "I can't {purpose}: the `{}` tool isn't available to me right now, so the todo \
         connection may be switched off or not set up.",
        tool.bare_name()
    )
}

/// One tool call to make.
#[derive(Debug, Clone, PartialEq)]
struct Call {
    tool: Tool,
    name: String,
    input: Value,
}

/// A tool call's result as it came back.
#[derive(Debug, Clone, Copy)]
struct Outcome<'m> {
    content: &'m str,
    is_error: bool,
}

/// A todo as the tools return it (only the fields used here).
#[derive(Debug, Clone, Deserialize)]
struct Todo {
    id: i64,
    title: String,
    #[serde(default)]
    completed: bool,
}

#[derive(Deserialize)]
struct TodoList {
    todos: Vec<Todo>,
}

#[derive(Deserialize)]
struct OneTodo {
    todo: Todo,
}

impl Outcome<'_> {
    /// The todos of a successful `get-todos`, or the reason there are none to show.
    fn todos(&self) -> Result<Vec<Todo>, String> {
        if self.is_error {
            return Err(error_message(self.content));
        }
        serde_json::from_str::<TodoList>(self.content)
            .map(|l| l.todos)
            .or_else(|_| serde_json::from_str::<Vec<Todo>>(self.content))
            .map_err(|_| format!("its answer could not be read ({})", clip(self.content, 120)))
    }

    /// The todo of a successful change, `Ok(None)` when it succeeded but is unreadable.
    fn todo(&self) -> Result<Option<Todo>, String> {
        if self.is_error {
            return Err(error_message(self.content));
        }
        Ok(serde_json::from_str::<OneTodo>(self.content)
            .map(|o| o.todo)
            .or_else(|_| serde_json::from_str::<Todo>(self.content))
            .ok())
    }
}

/// A tool error's message, without a trailing period (the caller ends the sentence).
fn error_message(content: &str) -> String {
    let text = match serde_json::from_str::<Value>(content) {
        Ok(Value::String(s)) => s,
        Ok(Value::Object(o)) => ["message", "error", "error_description"]
            .iter()
            .find_map(|k| o.get(*k).and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_else(|| content.to_owned()),
        _ => content.to_owned(),
    };
    let text = md(&clip(text.trim(), 300));
    let text = text.trim_end_matches('.').trim_end();
    if text.is_empty() {
        "the tool reported an error without a message".to_owned()
    } else {
        text.to_owned()
    }
}

// ---- planning --------------------------------------------------------------------------------

/// What one request does next.
enum Step {
    Call(Call),
    /// Several calls at once (one per todo of a bulk change).
    Calls(Vec<Call>),
    Finish(String),
}

enum Round {
    /// Tool calls to make now, each with the index of its intent.
    Calls(Vec<(usize, Call)>),
    /// Every intent is finished: its paragraphs, in order.
    Finished(Vec<String>),
}

/// The next round of calls. A listing asked for after a change waits until the change is done,
/// so `add milk, then list my todos` shows the new todo; a title lookup waits only for earlier
/// adds and renames. Everything else goes out together, in order.
fn plan_round(intents: &[Intent], results: &[Vec<Outcome<'_>>], tools: &Toolbox<'_>) -> Round {
    let mut calls = Vec::new();
    let mut paragraphs: Vec<String> = Vec::new();
    let (mut is_write_pending, mut is_title_change_pending) = (false, false);
    for (index, (intent, results)) in intents.iter().zip(results).enumerate() {
        match step(intent, results, tools) {
            Step::Finish(text) => {
                if !paragraphs.contains(&text) {
                    paragraphs.push(text);
                }
            }
            Step::Call(call) => {
                let must_wait = call.tool == Tool::GetTodos
                    && match intent {
                        Intent::List(_) | Intent::Bulk { .. } => is_write_pending,
                        _ => is_title_change_pending,
                    };
                if !must_wait {
                    calls.push((index, call));
                }
                is_write_pending |= intent.is_write();
                is_title_change_pending |= intent.changes_titles();
            }
            Step::Calls(several) => {
                calls.extend(several.into_iter().map(|call| (index, call)));
                is_write_pending |= intent.is_write();
                is_title_change_pending |= intent.changes_titles();
            }
        }
    }
    if calls.is_empty() {
        Round::Finished(paragraphs)
    } else {
        Round::Calls(calls)
    }
}

/// The next step of one intent, given the results of its calls so far.
fn step(intent: &Intent, results: &[Outcome<'_>], tools: &Toolbox<'_>) -> Step {
    match intent {
        Intent::Say(say) => Step::Finish(say_text(say)),
        Intent::List(filter) => match results.first() {
            None => tools.call(Tool::GetTodos, list_input(filter), "list your todos"),
            Some(outcome) => Step::Finish(listing(filter, outcome)),
        },
        Intent::Add(title) => match results.first() {
            None => tools.call(Tool::CreateTodo, json!({ "title": title }), "add todos"),
            Some(outcome) => Step::Finish(match outcome.todo() {
                Ok(Some(todo)) => format!("Added **{}** (#{}).", md(&todo.title), todo.id),
                Ok(None) => format!("Added **{}**.", md(title)),
                Err(e) => format!("I couldn't add **{}**: {e}.", md(title)),
            }),
        },
        Intent::SetDone { target, done } => act(target, Action::SetDone(*done), results, tools),
        Intent::Rename { target, title } => act(target, Action::Rename(title), results, tools),
        Intent::Toggle(target) => act(target, Action::Toggle, results, tools),
        Intent::Delete(target) => act(target, Action::Delete, results, tools),
        Intent::Bulk { action, filter } => bulk(*action, filter, results, tools),
    }
}

fn list_input(filter: &ListFilter) -> Value {
    let mut input = serde_json::Map::new();
    if let Some(completed) = filter.completed {
        input.insert("completed".into(), completed.into());
    }
    if let Some(search) = &filter.search {
        input.insert("search".into(), search.as_str().into());
    }
    Value::Object(input)
}

// ---- writing ---------------------------------------------------------------------------------

/// The Markdown answer to a `get-todos` call.
fn listing(filter: &ListFilter, outcome: &Outcome<'_>) -> String {
    let todos = match outcome.todos() {
        Ok(todos) => todos,
        Err(e) => return format!("I couldn't list your todos: {e}."),
    };
    let n = todos.len();
    let plural = if n == 1 { "" } else { "s" };
    let kind = match filter.completed {
        Some(true) => "completed ",
        Some(false) => "open ",
        None => "",
    };
    let head = match (&filter.search, filter.completed, n) {
        (Some(s), _, 0) => return format!("None of your {kind}todos match “{}”.", md(s)),
        (Some(s), _, _) => format!("{n} {kind}todo{plural} match “{}”:", md(s)),
        (None, None, 0) => return "You have no todos yet.".to_owned(),
        (None, Some(false), 0) => {
            return "You have no open todos: there is nothing left to do.".to_owned();
        }
        (None, Some(true), 0) => return "You haven't completed any todos yet.".to_owned(),
        (None, _, _) => format!("You have {n} {kind}todo{plural}:"),
    };
    format!("{head}\n\n{}", todo_lines(todos.iter()))
}

/// `- ☐ #1 prep the demo` lines.
fn todo_lines<'t>(todos: impl Iterator<Item = &'t Todo>) -> String {
    todos
        .map(|t| {
            let mark = if t.completed { "✓" } else { "☐" };
            format!("- {mark} #{} {}", t.id, md(&t.title))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `s` on one line with Markdown and HTML special characters escaped, so a title shows as typed.
fn md(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for (i, word) in s.split_whitespace().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        for c in word.chars() {
            if "\\`*_[]<>~|".contains(c) {
                out.push('\\');
            }
            out.push(c);
        }
    }
    out
}

/// At most `max` characters of `s`, with `…` when cut.
fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s.to_owned(),
    }
}

const EXAMPLES: &str = "- `list my todos` or `what's left`\n\
                        - `find todos about milk`\n\
                        - `add a todo \"prep the demo\"`\n\
                        - `mark todo 1 as done` or `mark 1 as not done`\n\
                        - `rename todo 2 to \"buy oat milk\"`\n\
                        - `delete todo 1`\n\n\
                        You can ask for several things at once, like `add \"buy milk\" and then \
                        list my todos`.";

/// What the model can do.
fn help_text() -> String {
    format!(
        "I'm the built-in offline model, so I only understand simple requests about your todos. \
         Try one of these:\n\n{EXAMPLES}\n\nFor anything else, configure a language model \
         provider (Anthropic, Bedrock or an OpenAI-compatible API)."
    )
}

/// One line for a request it could not read, with one example close to what was asked.
fn not_understood(request: &str) -> String {
    let lower = request.to_lowercase();
    let has = |words: &[&str]| {
        lower
            .split(|c: char| !c.is_alphanumeric())
            .any(|w| words.contains(&w))
    };
    let example = if has(&["delete", "remove", "drop", "erase", "clear", "trash"]) {
        "delete the milk todo"
    } else if has(&[
        "done",
        "finish",
        "finished",
        "complete",
        "completed",
        "check",
        "tick",
    ]) {
        "mark the milk todo as done"
    } else if has(&["rename", "retitle", "change", "call", "edit"]) {
        "rename the milk todo to \"buy oat milk\""
    } else if has(&["add", "create", "new", "remind", "remember"]) {
        "add a todo \"buy milk\""
    } else {
        "list my todos"
    };
    format!(
        "Sorry, I didn't understand “{}”: I'm the built-in offline model and only handle simple \
         todo requests, like “{example}” (say “help” for more).",
        md(&clip(request.trim(), 100))
    )
}

fn say_text(say: &Say) -> String {
    match say {
        Say::Greeting => format!(
            "Hello! I'm the built-in offline model. I can look after your todos. Try one of \
             these:\n\n{EXAMPLES}"
        ),
        Say::Thanks => "You're welcome!".to_owned(),
        Say::Help => help_text(),
        Say::OthersTodos(whose) => format!(
            "I can only see and change your own todos, not {}; say “list my todos” to see yours.",
            md(whose)
        ),
        Say::OneAtATime => "I can rename only one todo at a time. Tell me which one, for example \
                            “rename todo 2 to \"buy oat milk\"”."
            .to_owned(),
        Say::WhichOne => "Which todo do you mean? Tell me its number or its title, for example \
                          “mark todo 3 as done” or “delete \"buy milk\"”."
            .to_owned(),
        Say::NeedTitle => {
            "What should the new todo say? For example: add a todo \"buy milk\".".to_owned()
        }
    }
}

#[cfg(test)]
mod tests;
