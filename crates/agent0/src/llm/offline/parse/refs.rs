//! Which todos a request is about: ids (`todo 3`, `#3 and 4`), quoted titles, a description
//! (`the bank one`, `the todo about milk`, `calling mom`), or a filtered set (`all my completed
//! todos`, `everything that's done`, `all todos about milk`).

use std::sync::LazyLock;

use regex::Regex;

use super::quotes::{PH, quoted_texts, restore, single_quote};
use super::{
    BulkAction, CONNECT, Intent, ListFilter, NOUN, STATUS, Say, Target, re, state_of,
    trim_punctuation,
};

/// Whether an unquoted title may name the target.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Unquoted {
    /// Only ids and quoted titles.
    No,
    /// Also `the todo called …`, `the … one`.
    Explicit,
    /// Also any other text (`delete buy milk`).
    Any,
}

pub(super) enum Refs {
    Targets(Vec<Target>),
    /// Every todo that passes the filter.
    Bulk(ListFilter),
    Vague,
}

static IDS: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"(?i)^(?:(?:the|my)\s+)?(?:(?:{NOUN}|numbers?|ids?|ones?)\s+)?(?:(?:number|id)\s+)?#?\d+(?:(?:\s*,\s*(?:and\s+)?|\s+and\s+|\s*&\s*|\s+)(?:(?:{NOUN}|number|id)\s+)?#?\d+)*$"
    ))
});
static DIGITS: LazyLock<Regex> = LazyLock::new(|| re(r"\d+"));
static QUOTED_REFS: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"(?i)^(?:(?:the|my)\s+)?(?:(?:{NOUN}|ones?)\s+)?(?:(?:called|named|titled|that\s+says|saying|about|with\s+(?:the\s+)?title|reading)\s+)?(?P<qs>{PH}(?:(?:\s*,\s*(?:and\s+)?|\s+and\s+|\s*&\s*|\s+){PH})*)$"
    ))
});
static VAGUE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)^(?:it|that|this|them|those|these|both|both\s+of\s+them|them\s+all|all\s+of\s+(?:them|those|these)|all\s+(?:those|these)|the\s+(?:last|first|second|third|previous|other|same|new|latest)(?:\s+(?:one|todo|task|item))?|(?:that|this|the)\s+(?:one|todo|task|item))$",
    )
});
static EXPLICIT: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"(?i)^(?:(?:the|my|that|this)\s+)?(?:{NOUN}|one)\s+(?:called|named|titled|that\s+says|saying|about|with\s+(?:the\s+)?title|with|mentioning|that\s+mentions|containing|regarding|reading|for)\s+(?P<title>.+?)(?:\s+in\s+it)?$"
    ))
});
/// `the bank one`, `the demo todo`, `my dentist task`.
static THE_X_ONE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)^(?:(?:the|my|that|this)\s+)?(?P<title>.+?)\s+(?:one|to-?do|task|item|entry|reminder)$",
    )
});
static LEADING_ARTICLE: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?i)^(?:(?:the|my)\s+)?(?:(?:todo|task|item)\s+)?"));

pub(super) fn parse_refs(s: &str, quotes: &[String], unquoted: Unquoted) -> Option<Refs> {
    let s = trim_punctuation(s);
    if IDS.is_match(s) {
        let mut ids = Vec::new();
        for m in DIGITS.find_iter(s) {
            let id = m.as_str().parse::<i64>().ok()?;
            if !ids.contains(&Target::Id(id)) {
                ids.push(Target::Id(id));
            }
        }
        return Some(Refs::Targets(ids));
    }
    if let Some(m) = QUOTED_REFS.captures(s) {
        let titles = quoted_texts(&m["qs"], quotes);
        if titles.iter().any(String::is_empty) {
            return None;
        }
        return Some(Refs::Targets(
            titles.into_iter().map(Target::Title).collect(),
        ));
    }
    if VAGUE.is_match(s) {
        return Some(Refs::Vague);
    }
    if let Some(filter) = bulk(s, quotes) {
        return Some(Refs::Bulk(filter));
    }
    if unquoted != Unquoted::No {
        let described = EXPLICIT
            .captures(s)
            .or_else(|| THE_X_ONE.captures(s))
            .map(|m| trim_punctuation(m.name("title").map_or("", |t| t.as_str())));
        if let Some(title) = described.filter(|t| !t.is_empty()) {
            return Some(Refs::Targets(vec![described_target(title, quotes)]));
        }
    }
    if unquoted != Unquoted::Any {
        return None;
    }
    let title = trim_punctuation(LEADING_ARTICLE.replace(s, "").as_ref()).to_owned();
    if title.is_empty() {
        return None;
    }
    // `mark as done`: the words around the verb, no todo named.
    if ["as", "to", "it as"].contains(&title.to_lowercase().as_str()) {
        return Some(Refs::Vague);
    }
    Some(Refs::Targets(vec![described_target(&title, quotes)]))
}

/// A quoted title names a todo exactly; unquoted words describe it.
fn described_target(title: &str, quotes: &[String]) -> Target {
    match single_quote(title, quotes) {
        Some(quoted) => Target::Title(quoted),
        None => Target::Phrase(restore(title, quotes)),
    }
}

/// One intent per target, the bulk change, or the question when the targets are vague.
pub(super) fn for_each_target(
    refs: Refs,
    action: BulkAction,
    make: impl Fn(Target) -> Intent,
) -> Vec<Intent> {
    match refs {
        Refs::Targets(targets) => targets.into_iter().map(make).collect(),
        Refs::Bulk(filter) => vec![Intent::Bulk { action, filter }],
        Refs::Vague => vec![Intent::Say(Say::WhichOne)],
    }
}

// ---- a filtered set --------------------------------------------------------------------------

static QUANTIFIER: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)^(?:all|every|everything|each|any|anything)(?:\s+(?:of|the|my|our|them|those|these))*(?:\s+|$)",
    )
});
static DETERMINERS: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?i)^(?:(?:my|the|our|those|these)\s+)+"));
static LEADING_STATUS: LazyLock<Regex> =
    LazyLock::new(|| re(&format!(r"(?i)^(?P<state>{STATUS})(?:\s+|$)")));
const PLURAL: &str = r"(?:to-?dos|todo['’]s|tasks|items|entries|reminders|ones|things|stuff|of\s+them|to-?do\s+list|list)";
/// `every todo`, `each task`.
static SINGULAR_NOUN: LazyLock<Regex> =
    LazyLock::new(|| re(&format!(r"(?i)^(?:{NOUN}|one)(?:\s+|$)")));
/// `milk todos`, `todos`: a word or two before the noun is a search term.
static PLURAL_NOUN: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"(?i)^(?:(?P<pre>\S+(?:\s+\S+)?)\s+)??{PLURAL}(?:\s+|$)"
    ))
});
static STATE_CLAUSE: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"(?i)(?:^|\s+)(?:(?:that|which)(?:['’]s|\s+(?:are|is|were|was|have\s+been|has\s+been))?|i(?:['’]ve|\s+have)|(?:are|is)|already|marked(?:\s+as)?)\s+(?:already\s+)?(?:been\s+)?(?:marked\s+)?(?:as\s+)?(?P<state>{STATUS}|not\s+(?:yet\s+)?(?:done|completed|finished)|checked\s+off|ticked\s+off|crossed\s+off)$"
    ))
});
static TERM: LazyLock<Regex> =
    LazyLock::new(|| re(&format!(r"(?i)^(?:{CONNECT})\s+(?P<term>.+)$")));

/// The filter, when `s` describes a set of todos rather than one.
fn bulk(s: &str, quotes: &[String]) -> Option<ListFilter> {
    let mut s = trim_punctuation(s);
    let quantified = QUANTIFIER.find(s).map(|m| {
        let q = m.as_str().trim().to_lowercase();
        s = trim_punctuation(&s[m.end()..]);
        q
    });
    let is_everything = quantified
        .as_deref()
        .is_some_and(|q| q.starts_with("everything") || q.starts_with("anything"));
    s = &s[DETERMINERS.find(s).map_or(0, |m| m.end())..];
    let mut completed = None;
    if let Some(m) = LEADING_STATUS.captures(s) {
        completed = state_of(&m["state"]);
        s = &s[m.get(0).map_or(0, |m| m.end())..];
    }
    let mut search = None;
    let mut has_noun = is_everything;
    if let Some(m) = PLURAL_NOUN.captures(s) {
        if let Some(pre) = m.name("pre") {
            // `milk todos` is a term only after `all`/`every` (`the milk ones` is one todo).
            quantified.as_ref()?;
            search = Some(restore(pre.as_str(), quotes));
        }
        has_noun = true;
        s = &s[m.get(0).map_or(0, |m| m.end())..];
    } else if quantified.is_some()
        && let Some(m) = SINGULAR_NOUN.find(s)
    {
        has_noun = true;
        s = &s[m.end()..];
    }
    if let Some(m) = STATE_CLAUSE.captures(s) {
        completed = state_of(&m["state"]).or(completed);
        s = trim_punctuation(&s[..m.get(0).map_or(0, |m| m.start())]);
    }
    if let Some(m) = TERM.captures(s) {
        let term = trim_punctuation(&m["term"]);
        search = Some(single_quote(term, quotes).unwrap_or_else(|| restore(term, quotes)));
        s = "";
    }
    let is_set = quantified.is_some() || completed.is_some() || has_noun;
    if !trim_punctuation(s).is_empty() || !is_set {
        return None;
    }
    if search.as_deref().is_some_and(|t| t.trim().is_empty()) {
        return None;
    }
    Some(ListFilter { completed, search })
}
