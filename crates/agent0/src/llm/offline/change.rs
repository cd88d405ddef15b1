//! Changing todos for the offline model: one todo by id, by quoted title or by a description
//! matched against part of its title (`the bank one`, `calling mom`), or every todo in a filtered
//! set (`delete all my completed todos`), with a question when a description fits several.

use serde_json::{Value, json};

use super::parse::{BulkAction, ListFilter, Target};
use super::{Outcome, Step, Todo, Tool, Toolbox, list_input, md, missing_tool, todo_lines};

/// A change to one todo.
#[derive(Clone, Copy)]
pub(super) enum Action<'i> {
    SetDone(bool),
    Rename(&'i str),
    Toggle,
    Delete,
}

impl Action<'_> {
    /// The tool that does it: `update-todo` with an explicit state is preferred over
    /// `toggle-todo`, so saying "mark 1 as done" twice leaves it done.
    pub(super) fn tool(self, tools: &Toolbox<'_>) -> Tool {
        match self {
            Self::SetDone(_) if !tools.has(Tool::UpdateTodo) && tools.has(Tool::ToggleTodo) => {
                Tool::ToggleTodo
            }
            Self::SetDone(_) | Self::Rename(_) => Tool::UpdateTodo,
            Self::Toggle => Tool::ToggleTodo,
            Self::Delete => Tool::DeleteTodo,
        }
    }

    fn input(self, tool: Tool, id: i64) -> Value {
        match (self, tool) {
            (Self::SetDone(done), Tool::UpdateTodo) => json!({ "id": id, "completed": done }),
            (Self::Rename(title), _) => json!({ "id": id, "title": title }),
            _ => json!({ "id": id }),
        }
    }

    fn purpose(self) -> &'static str {
        match self {
            Self::SetDone(true) => "mark todos as done",
            Self::SetDone(false) => "mark todos as not done",
            Self::Rename(_) => "rename todos",
            Self::Toggle => "toggle todos",
            Self::Delete => "delete todos",
        }
    }

    /// `mark #1 as done`, for error messages.
    fn describe(self, id: i64) -> String {
        match self {
            Self::SetDone(done) => format!("mark #{id} as {}", state_name(done)),
            Self::Rename(_) => format!("rename #{id}"),
            Self::Toggle => format!("toggle #{id}"),
            Self::Delete => format!("delete #{id}"),
        }
    }

    /// An example request for this action on `id`, for the "which one?" question.
    fn example(self, id: i64) -> String {
        match self {
            Self::SetDone(done) => format!("mark todo {id} as {}", state_name(done)),
            Self::Rename(title) => format!("rename todo {id} to \"{title}\""),
            Self::Toggle => format!("toggle todo {id}"),
            Self::Delete => format!("delete todo {id}"),
        }
    }

    fn report(self, id: i64, outcome: &Outcome<'_>) -> String {
        let todo = match outcome.todo() {
            Ok(todo) => todo,
            Err(e) => return format!("I couldn't {}: {e}.", self.describe(id)),
        };
        let id = todo.as_ref().map_or(id, |t| t.id);
        match self {
            Self::Delete => format!("Deleted #{id}."),
            Self::Rename(title) => {
                let title = todo.as_ref().map_or(title, |t| t.title.as_str());
                format!("Renamed #{id} to **{}**.", md(title))
            }
            Self::SetDone(_) | Self::Toggle => match (self, &todo) {
                (_, Some(todo)) => format!("Marked #{id} as {}.", state_name(todo.completed)),
                (Self::SetDone(done), None) => format!("Marked #{id} as {}.", state_name(done)),
                _ => format!("Toggled #{id}."),
            },
        }
    }
}

pub(super) fn state_name(done: bool) -> &'static str {
    if done { "done" } else { "not done" }
}

/// Runs `action` on `target`: for a title, look it up first (`get-todos` with `search`; for a
/// description that the search misses, all todos, matched word by word); when only `toggle-todo`
/// can set the state, read the current state first so the result is the state asked for.
pub(super) fn act(
    target: &Target,
    action: Action<'_>,
    results: &[Outcome<'_>],
    tools: &Toolbox<'_>,
) -> Step {
    let tool = action.tool(tools);
    if !tools.has(tool) {
        return Step::Finish(missing_tool(tool, action.purpose()));
    }
    let (id, known, rest) = match target {
        Target::Id(id) => {
            let needs_state = matches!(action, Action::SetDone(_))
                && tool == Tool::ToggleTodo
                && tools.has(Tool::GetTodos);
            match (needs_state, results.split_first()) {
                (false, _) => (*id, None, results),
                (true, None) => return tools.call(Tool::GetTodos, json!({}), "look up todos"),
                (true, Some((outcome, rest))) => match outcome.todos() {
                    Err(e) => return Step::Finish(format!("I couldn't look up #{id}: {e}.")),
                    Ok(todos) => match todos.into_iter().find(|t| t.id == *id) {
                        Some(todo) => (*id, Some(todo), rest),
                        None => return Step::Finish(format!("I couldn't find todo #{id}.")),
                    },
                },
            }
        }
        Target::Title(title) | Target::Phrase(title) => {
            let is_phrase = matches!(target, Target::Phrase(_));
            match look_up(title, is_phrase, action, results, tools) {
                Ok((todo, rest)) => (todo.id, Some(todo), rest),
                Err(step) => return step,
            }
        }
    };
    if let (Action::SetDone(done), Some(todo)) = (action, &known)
        && todo.completed == done
    {
        return Step::Finish(format!("#{id} is already {}.", state_name(done)));
    }
    match rest.first() {
        None => tools.call(tool, action.input(tool, id), action.purpose()),
        Some(outcome) => Step::Finish(action.report(id, outcome)),
    }
}

/// The todo `title` names and the results after its lookup, or the next step of the lookup.
fn look_up<'r, 'm>(
    title: &str,
    is_phrase: bool,
    action: Action<'_>,
    results: &'r [Outcome<'m>],
    tools: &Toolbox<'_>,
) -> Result<(Todo, &'r [Outcome<'m>]), Step> {
    let wanted = match action {
        Action::SetDone(done) => Some(done),
        _ => None,
    };
    let Some((found, rest)) = results.split_first() else {
        let purpose = "look up todos by their title";
        return Err(tools.call(Tool::GetTodos, json!({ "search": title }), purpose));
    };
    let couldnt_look_up =
        |e: String| Step::Finish(format!("I couldn't look up “{}”: {e}.", md(title)));
    let todos = found.todos().map_err(couldnt_look_up)?;
    let (todos, rest) = match pick(title, &todos, wanted) {
        Pick::One(todo) => return Ok((todo.clone(), rest)),
        Pick::Many(todos) => return Err(Step::Finish(ambiguous(title, &todos, action))),
        Pick::None if !is_phrase => {
            return Err(Step::Finish(format!(
                "I couldn't find a todo called “{}”.",
                md(title)
            )));
        }
        // The search wants the exact words; `calling mom` is still `call mom`.
        Pick::None => match rest.split_first() {
            None => return Err(tools.call(Tool::GetTodos, json!({}), "look up todos")),
            Some((all, rest)) => (all.todos().map_err(couldnt_look_up)?, rest),
        },
    };
    match pick(title, &todos, wanted) {
        Pick::One(todo) => Ok((todo.clone(), rest)),
        Pick::Many(todos) => Err(Step::Finish(ambiguous(title, &todos, action))),
        Pick::None => Err(Step::Finish(format!(
            "None of your todos matches “{}”, so I didn't change anything. Say “list my todos” \
             to see them all.",
            md(title)
        ))),
    }
}

enum Pick<'t> {
    One(&'t Todo),
    None,
    Many(Vec<&'t Todo>),
}

/// The todo `title` means: an exact (case-insensitive) title match, else the only one containing
/// it, else the only one with all its words (`calling mom` → `call mom`). Among several, the only
/// one not yet in the `wanted` state wins.
fn pick<'t>(title: &str, todos: &'t [Todo], wanted: Option<bool>) -> Pick<'t> {
    let normal = |s: &str| {
        s.split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase()
    };
    let needle = normal(title);
    let containing: Vec<&Todo> = todos
        .iter()
        .filter(|t| normal(&t.title).contains(&needle))
        .collect();
    let exact: Vec<&Todo> = containing
        .iter()
        .copied()
        .filter(|t| normal(&t.title) == needle)
        .collect();
    let pool = if !exact.is_empty() {
        exact
    } else if !containing.is_empty() {
        containing
    } else {
        todos
            .iter()
            .filter(|t| has_words_of(&t.title, title))
            .collect()
    };
    match pool.as_slice() {
        [] => return Pick::None,
        [one] => return Pick::One(one),
        _ => {}
    }
    if let Some(state) = wanted {
        let pending: Vec<&Todo> = pool
            .iter()
            .copied()
            .filter(|t| t.completed != state)
            .collect();
        if let [one] = pending.as_slice() {
            return Pick::One(one);
        }
    }
    Pick::Many(pool)
}

/// Whether every word of `phrase` that carries meaning is in `title`, allowing other endings
/// (`calling` ~ `call`, `plants` ~ `plant`).
fn has_words_of(title: &str, phrase: &str) -> bool {
    const LITTLE: &str = "the a an my our to of for with about on in at and or this that one ones \
                          todo task item";
    let words = |s: &str| -> Vec<String> {
        s.split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect()
    };
    let wanted: Vec<String> = words(phrase)
        .into_iter()
        .filter(|w| !LITTLE.split_whitespace().any(|l| l == w))
        .collect();
    let have = words(title);
    !wanted.is_empty()
        && wanted
            .iter()
            .all(|w| have.iter().any(|h| is_same_word(w, h)))
}

fn is_same_word(a: &str, b: &str) -> bool {
    fn stem(w: &str) -> &str {
        for ending in ["ing", "ed", "es", "s"] {
            if let Some(stem) = w.strip_suffix(ending)
                && stem.chars().count() >= 3
            {
                return stem;
            }
        }
        w
    }
    let (a, b) = (stem(a), stem(b));
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    a == b
        || (short.chars().count() >= 3 && long.starts_with(short) && long.len() - short.len() <= 2)
}

fn ambiguous(title: &str, todos: &[&Todo], action: Action<'_>) -> String {
    let first = todos.first().map_or(1, |t| t.id);
    format!(
        "Several todos match “{}”, so I didn't change any of them:\n\n{}\n\nWhich one do you \
         mean? Tell me its number, for example “{}”.",
        md(title),
        todo_lines(todos.iter().copied()),
        md(&action.example(first))
    )
}

// ---- a filtered set --------------------------------------------------------------------------

/// The most todos one request changes; the rest wait for the person to ask again.
const MAX_BULK: usize = 50;

impl BulkAction {
    fn one(self) -> Action<'static> {
        match self {
            Self::SetDone(done) => Action::SetDone(done),
            Self::Toggle => Action::Toggle,
            Self::Delete => Action::Delete,
        }
    }

    fn verb(self) -> &'static str {
        match self {
            Self::SetDone(true) => "mark as done",
            Self::SetDone(false) => "mark as not done",
            Self::Toggle => "toggle",
            Self::Delete => "delete",
        }
    }
}

/// The listing that finds the todos: for `mark all as done`, only those not done yet.
fn bulk_filter(action: BulkAction, filter: &ListFilter) -> ListFilter {
    let mut filter = filter.clone();
    if let (BulkAction::SetDone(done), None) = (action, filter.completed) {
        filter.completed = Some(!done);
    }
    filter
}

/// Runs `action` on every todo that passes `filter`: one listing, then one call per todo.
pub(super) fn bulk(
    action: BulkAction,
    filter: &ListFilter,
    results: &[Outcome<'_>],
    tools: &Toolbox<'_>,
) -> Step {
    let one = action.one();
    let tool = one.tool(tools);
    if !tools.has(tool) {
        return Step::Finish(missing_tool(tool, one.purpose()));
    }
    let filter = bulk_filter(action, filter);
    let Some((listed, rest)) = results.split_first() else {
        return tools.call(Tool::GetTodos, list_input(&filter), "look up todos");
    };
    let todos = match listed.todos() {
        Ok(todos) => todos,
        Err(e) => return Step::Finish(format!("I couldn't look up your todos: {e}.")),
    };
    // The tool already filtered; checking again keeps a lenient server from widening the set.
    let search = filter.search.as_deref().map(str::to_lowercase);
    let matching: Vec<&Todo> = todos
        .iter()
        .filter(|t| filter.completed.is_none_or(|c| t.completed == c))
        .filter(|t| {
            search
                .as_deref()
                .is_none_or(|s| t.title.to_lowercase().contains(s) || has_words_of(&t.title, s))
        })
        .collect();
    let pending: Vec<&Todo> = matching
        .iter()
        .copied()
        .filter(|t| !matches!(action, BulkAction::SetDone(done) if t.completed == done))
        .collect();
    let targets = &pending[..pending.len().min(MAX_BULK)];
    if targets.is_empty() {
        return Step::Finish(nothing_to_do(action, &filter, matching.len()));
    }
    if rest.is_empty() {
        let calls = targets
            .iter()
            .map(|t| tools.call(tool, one.input(tool, t.id), one.purpose()))
            .filter_map(|step| match step {
                Step::Call(call) => Some(call),
                _ => None,
            })
            .collect();
        return Step::Calls(calls);
    }
    let mut done = Vec::new();
    let mut failed = Vec::new();
    for (todo, outcome) in targets.iter().zip(rest) {
        match outcome.todo() {
            Ok(after) => done.push(after.unwrap_or_else(|| {
                let mut todo = (*todo).clone();
                if let BulkAction::SetDone(state) = action {
                    todo.completed = state;
                }
                todo
            })),
            Err(e) => failed.push(format!("I couldn't {}: {e}.", one.describe(todo.id))),
        }
    }
    let mut paragraphs = Vec::new();
    if !done.is_empty() {
        let n = done.len();
        let todos = if n == 1 { "todo" } else { "todos" };
        let head = match action {
            BulkAction::Delete => format!("Deleted {n} {todos}:"),
            BulkAction::SetDone(state) => format!("Marked {n} {todos} as {}:", state_name(state)),
            BulkAction::Toggle => format!("Toggled {n} {todos}:"),
        };
        paragraphs.push(format!("{head}\n\n{}", todo_lines(done.iter())));
    }
    paragraphs.extend(failed);
    let skipped = matching.len() - pending.len();
    if let (BulkAction::SetDone(state), 1..) = (action, skipped) {
        let were = if skipped == 1 { "was" } else { "were" };
        paragraphs.push(format!("{skipped} already {were} {}.", state_name(state)));
    }
    if pending.len() > targets.len() {
        paragraphs.push(format!(
            "{} more match; I {} at most {MAX_BULK} at a time, so ask again for the rest.",
            pending.len() - targets.len(),
            action.verb()
        ));
    }
    Step::Finish(paragraphs.join("\n\n"))
}

/// Why a bulk change changed nothing: no todo passes the filter, or all are already that way.
fn nothing_to_do(action: BulkAction, filter: &ListFilter, matching: usize) -> String {
    if let (BulkAction::SetDone(state), 1..) = (action, matching) {
        return match matching {
            1 => format!("The only matching todo is already {}.", state_name(state)),
            n => format!("All {n} matching todos are already {}.", state_name(state)),
        };
    }
    let kind = match filter.completed {
        Some(true) => "completed ",
        Some(false) => "open ",
        None => "",
    };
    let verb = action.verb();
    match &filter.search {
        Some(s) => format!(
            "None of your {kind}todos match “{}”, so there is nothing to {verb}.",
            md(s)
        ),
        None => format!("You have no {kind}todos, so there is nothing to {verb}."),
    }
}
