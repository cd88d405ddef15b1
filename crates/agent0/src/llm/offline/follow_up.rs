//! Answers to the offline model's own "which one do you mean?" question: after "Several todos
//! match “call”", a reply of `4`, `#4`, `number 4` or `the second one` finishes the request that
//! asked, on that todo. The model keeps no state, so the question and the request are read back
//! from the conversation.

use std::sync::LazyLock;

use regex::Regex;

use super::parse::{self, Intent, Target};
use super::{Message, Role, md};

static BY_NUMBER: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?i)^(?:(?:i\s+mean|it['’]?s|that['’]?s|the\s+one\s+numbered|number|no\.?|todo|id|just)\s+)*#?(?P<id>\d+)(?:\s+please)?[.!]?$",
    )
});
static BY_POSITION: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?i)^(?:(?:i\s+mean|it['’]?s|that['’]?s|just)\s+)?the\s+(?P<nth>first|second|third|fourth|fifth|last)(?:\s+(?:one|todo))?(?:\s+please)?[.!]?$",
    )
});
static CANDIDATE: LazyLock<Regex> = LazyLock::new(|| regex(r"(?m)^- \S+ #(?P<id>\d+) "));

fn regex(pattern: &str) -> Regex {
    // The patterns are constants; a typo is caught by every test run.
    Regex::new(pattern).expect("offline model pattern must compile")
}

const QUESTION: &str = "Several todos match “";
const WHICH: &str = "Which one do you mean?";

/// The asking request's intent on the chosen todo, when `messages[anchor]` answers the question.
pub(super) fn answer(messages: &[Message], anchor: usize) -> Option<Vec<Intent>> {
    let reply = messages[anchor].text();
    let reply = reply.trim();
    let (asked_at, question) = messages[..anchor]
        .iter()
        .enumerate()
        .rev()
        .find(|(_, m)| m.role == Role::Assistant && !m.text().trim().is_empty())
        .map(|(at, m)| (at, m.text()))?;
    // The question may follow what the rest of the request did (`Added …`).
    let asked = &question[question.find(QUESTION)? + QUESTION.len()..];
    let phrase = asked.split('”').next()?;
    let asked = asked.split(WHICH).next()?;
    let candidates: Vec<i64> = CANDIDATE
        .captures_iter(asked)
        .filter_map(|c| c["id"].parse().ok())
        .collect();
    let chosen = if let Some(c) = BY_NUMBER.captures(reply) {
        c["id"].parse().ok().filter(|id| candidates.contains(id))?
    } else {
        let c = BY_POSITION.captures(reply)?;
        let at = match c["nth"].to_lowercase().as_str() {
            "first" => 0,
            "second" => 1,
            "third" => 2,
            "fourth" => 3,
            "fifth" => 4,
            _ => candidates.len().checked_sub(1)?,
        };
        *candidates.get(at)?
    };
    let request = messages[..asked_at]
        .iter()
        .rev()
        .find(|m| m.role == Role::User && !m.text().trim().is_empty())?
        .text();
    let intent = parse::parse(&request)?
        .into_iter()
        .find_map(|intent| on_todo(intent, phrase, chosen))?;
    Some(vec![intent])
}

/// `intent` aimed at todo `id`, when its target is the title the question was about.
fn on_todo(intent: Intent, phrase: &str, id: i64) -> Option<Intent> {
    let is_asked = |target: &Target| match target {
        Target::Title(t) | Target::Phrase(t) => md(t) == phrase,
        Target::Id(_) => false,
    };
    let target = Target::Id(id);
    match intent {
        Intent::SetDone { target: t, done } if is_asked(&t) => {
            Some(Intent::SetDone { target, done })
        }
        Intent::Rename { target: t, title } if is_asked(&t) => {
            Some(Intent::Rename { target, title })
        }
        Intent::Toggle(t) if is_asked(&t) => Some(Intent::Toggle(target)),
        Intent::Delete(t) if is_asked(&t) => Some(Intent::Delete(target)),
        _ => None,
    }
}
