//! Reading a plain-language todo request into [`Intent`]s, for the offline model.
//!
//! Quoted titles are lifted out first (straight, curly and guillemet quotes) and replaced by
//! placeholders, so nothing inside a quote is ever read as a command. The rest is cut into
//! clauses at separators (newlines, `;`, sentence ends, `then`, `,`, `and`, …) only where every
//! piece reads as a request on its own; otherwise the separator is part of a title (`add bread
//! and butter`) or an id list (`delete todos 3 and 4`). Each clause is matched against a small
//! set of anchored, case-insensitive patterns.

use std::collections::HashMap;
use std::sync::LazyLock;

use regex::Regex;

use self::quotes::{PH, extract_quotes, quoted_texts, restore, single_quote};
use self::refs::{Refs, Unquoted, for_each_target, parse_refs};

mod quotes;
mod refs;

/// One thing the person asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Intent {
    /// List todos, optionally filtered.
    List(ListFilter),
    /// Create a todo with this title.
    Add(String),
    /// Mark a todo done (`true`) or not done (`false`).
    SetDone { target: Target, done: bool },
    /// Give a todo a new title.
    Rename { target: Target, title: String },
    /// Flip a todo between done and not done.
    Toggle(Target),
    /// Delete a todo.
    Delete(Target),
    /// Change every todo that passes the filter (`delete all my completed todos`).
    Bulk {
        action: BulkAction,
        filter: ListFilter,
    },
    /// Answer in text only.
    Say(Say),
}

impl Intent {
    /// Whether it changes todos (reads asked for after it wait until it is finished).
    pub(super) fn is_write(&self) -> bool {
        matches!(
            self,
            Self::Add(_)
                | Self::SetDone { .. }
                | Self::Rename { .. }
                | Self::Toggle(_)
                | Self::Delete(_)
                | Self::Bulk { .. }
        )
    }

    /// Whether it can change which todos a title lookup finds.
    pub(super) fn changes_titles(&self) -> bool {
        matches!(self, Self::Add(_) | Self::Rename { .. })
    }

    fn is_social(&self) -> bool {
        matches!(self, Self::Say(Say::Greeting | Say::Thanks))
    }
}

/// `get-todos` filters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct ListFilter {
    /// Only done (`true`) or open (`false`) todos.
    pub(super) completed: Option<bool>,
    /// Only titles containing this text.
    pub(super) search: Option<String>,
}

/// Which todo a request is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Target {
    /// `todo 3`, `#3`, `3`.
    Id(i64),
    /// `"buy milk"`: looked up with `get-todos` first.
    Title(String),
    /// Unquoted words that describe one todo (`the bank one`, `the todo called buy milk`,
    /// `calling mom`): looked up with `get-todos` first, then among all todos word by word.
    Phrase(String),
}

/// A change that can be made to a set of todos at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BulkAction {
    SetDone(bool),
    Toggle,
    Delete,
}

/// Text-only answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Say {
    /// `hi`.
    Greeting,
    /// `thanks`.
    Thanks,
    /// `help`, `what can you do`.
    Help,
    /// A request about someone else's todos: whose, ready for a sentence (`bob's`, `the todos of
    /// every user`).
    OthersTodos(String),
    /// `rename all my todos to …`: renaming is one todo at a time.
    OneAtATime,
    /// `delete it`: no memory of what "it" is.
    WhichOne,
    /// `add a todo` with no title.
    NeedTitle,
}

/// The intents in `text`, in order, or `None` when it is not (entirely) understood.
pub(super) fn parse(text: &str) -> Option<Vec<Intent>> {
    const MAX_CHARS: usize = 4_000;
    if text.chars().count() > MAX_CHARS {
        return None;
    }
    let (held, quotes) = extract_quotes(text);
    let mut intents = Splitter::new(&held, &quotes).parse()?;
    if intents.iter().any(|i| !i.is_social()) {
        intents.retain(|i| !i.is_social());
    }
    (!intents.is_empty()).then_some(intents)
}

fn re(pattern: &str) -> Regex {
    // The patterns are constants; a typo is caught by every test run.
    Regex::new(pattern).expect("offline model pattern must compile")
}

// ---- clauses ---------------------------------------------------------------------------------

static SEPARATOR: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)\s*(?:(?:\r?\n)+|;+|[.!?]+\s+|,?\s+and\s+then\s+|,\s*then\s+|\s+then\s+|,?\s+after\s+that,?\s+|,\s*and\s+|,\s*also\s+|,\s*|\s+and\s+|\s+&\s+|\s+also\s+|\s+plus\s+)\s*",
    )
});

/// Cuts text into clauses where every piece parses, preferring the earliest cut.
struct Splitter<'t> {
    text: &'t str,
    quotes: &'t [String],
    separators: Vec<(usize, usize)>,
    memo: HashMap<usize, Option<Vec<Intent>>>,
}

impl<'t> Splitter<'t> {
    fn new(text: &'t str, quotes: &'t [String]) -> Self {
        const MAX_SEPARATORS: usize = 40;
        let separators = SEPARATOR
            .find_iter(text)
            .map(|m| (m.start(), m.end()))
            .take(MAX_SEPARATORS)
            .collect();
        Self {
            text,
            quotes,
            separators,
            memo: HashMap::new(),
        }
    }

    fn parse(&mut self) -> Option<Vec<Intent>> {
        self.parse_from(0)
    }

    fn parse_from(&mut self, start: usize) -> Option<Vec<Intent>> {
        if let Some(done) = self.memo.get(&start) {
            return done.clone();
        }
        let mut result = None;
        let cuts: Vec<(usize, usize)> = self
            .separators
            .iter()
            .copied()
            .filter(|(s, _)| *s >= start)
            .collect();
        for (cut, resume) in cuts {
            if let Some(mut left) = parse_clause(&self.text[start..cut], self.quotes)
                && let Some(right) = self.parse_from(resume)
            {
                left.extend(right);
                result = Some(left);
                break;
            }
        }
        if result.is_none() {
            result = parse_clause(&self.text[start..], self.quotes);
        }
        self.memo.insert(start, result.clone());
        result
    }
}

static GREETING: LazyLock<Regex> = LazyLock::new(|| {
    re(r"(?i)^(?:hi|hello|hey|hiya|howdy|yo|good\s+(?:morning|afternoon|evening))(?:\s+there)?$")
});
static THANKS: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)^(?:thanks|thank\s+you|thx|ty|cheers|many\s+thanks)(?:\s+(?:so\s+much|a\s+lot|very\s+much))?$",
    )
});
static HELP: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)^(?:help|\?|what\s+can\s+you\s+do|what\s+do\s+you\s+(?:do|understand)|how\s+do\s+(?:i\s+use\s+)?(?:you|this)\s*(?:work)?|how\s+does\s+this\s+work|commands|usage|examples?)$",
    )
});
static POLITE_PREFIX: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)^(?:please|pls|plz|kindly|(?:can|could|would|will)\s+(?:you|u)(?:\s+please)?|would\s+you\s+mind|(?:i['’]d|i\s+would)\s+like(?:\s+you)?\s+to|i\s+want(?:\s+you)?\s+to|i\s+need\s+you\s+to|i\s+wanna|let['’]?s|let\s+me\s+know|go\s+ahead\s+and|help\s+me|just|now|also|and|then|so|ok|okay|alright|oh|um|uh|well|hey|hi|hello|first|next|finally|after\s+that|quickly)(?:[\s,:!.\-]+|$)",
    )
});
static POLITE_SUFFIX: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?i)(?:^|[\s,]+)(?:please|pls|plz|thanks|thank\s+you|thx|for\s+me)$"));

fn trim_punctuation(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_whitespace() || ",.;:!?-–—".contains(c))
}

/// `s` without politeness around the request (`can you please …, thanks`).
fn strip_politeness(s: &str) -> &str {
    let mut s = trim_punctuation(s);
    loop {
        let before = s.len();
        if let Some(m) = POLITE_PREFIX.find(s) {
            s = trim_punctuation(&s[m.end()..]);
        }
        if let Some(m) = POLITE_SUFFIX.find(s) {
            s = trim_punctuation(&s[..m.start()]);
        }
        if s.len() == before {
            return s;
        }
    }
}

/// The intents of one clause; `Some(vec![])` for a clause with nothing in it (`please`).
fn parse_clause(raw: &str, quotes: &[String]) -> Option<Vec<Intent>> {
    let trimmed = trim_punctuation(raw);
    if trimmed.is_empty() {
        return Some(Vec::new());
    }
    if GREETING.is_match(trimmed) {
        return Some(vec![Intent::Say(Say::Greeting)]);
    }
    if THANKS.is_match(trimmed) {
        return Some(vec![Intent::Say(Say::Thanks)]);
    }
    let c = strip_politeness(trimmed);
    if c.is_empty() {
        return Some(Vec::new());
    }
    if HELP.is_match(c) {
        return Some(vec![Intent::Say(Say::Help)]);
    }
    if let Some(intents) = add(c, quotes) {
        return Some(intents);
    }
    if let Some(who) = others_todos(c) {
        return Some(vec![Intent::Say(Say::OthersTodos(who))]);
    }
    if let Some(filter) = list(c) {
        return Some(vec![Intent::List(filter)]);
    }
    search(c, quotes)
        .or_else(|| rename(c, quotes))
        .or_else(|| set_done(c, quotes))
        .or_else(|| toggle(c, quotes))
        .or_else(|| delete(c, quotes))
}

// ---- shared pattern pieces -------------------------------------------------------------------

const NOUN: &str = r"(?:to-?dos?|todo['’]s|tasks?|items?|entries|entry|reminders?)";
const LIST_NOUN: &str =
    r"(?:(?:to-?do|to\s+do|todo|task)\s+list|list|to-?dos|todos|tasks|reminders)";
const STATUS: &str = r"(?:open|pending|remaining|outstanding|unfinished|incomplete|undone|active|completed|done|finished|closed)";
const DONE: &str = r"(?:done|complete|completed|finished|checked(?:\s+off)?|ticked(?:\s+off)?|crossed\s+off|closed|resolved)";
const UNDONE: &str = r"(?:not\s+(?:yet\s+)?(?:done|complete|completed|finished|checked)|undone|incomplete|uncompleted|unfinished|open|pending|active|unchecked|unticked|to\s+do|todo|outstanding|re-?opened|in\s+progress)";
const LIST_SUFFIX: &str = r"(?:to|on|onto|in|into|from|off|of|among|within)\s+(?:my|the|our)\s+";

static IS_DONE: LazyLock<Regex> = LazyLock::new(|| re(&format!(r"(?i)^{DONE}$")));
static IS_UNDONE: LazyLock<Regex> = LazyLock::new(|| re(&format!(r"(?i)^{UNDONE}$")));
static TRAILING_LIST: LazyLock<Regex> =
    LazyLock::new(|| re(&format!(r"(?i)\s+{LIST_SUFFIX}{LIST_NOUN}$")));

/// Whether a status phrase means done (`Some(true)`) or not done (`Some(false)`).
fn state_of(word: &str) -> Option<bool> {
    if IS_DONE.is_match(word) {
        Some(true)
    } else if IS_UNDONE.is_match(word) {
        Some(false)
    } else {
        None
    }
}

// ---- someone else's todos --------------------------------------------------------------------

static POSSESSIVE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)(?:^|[^\p{L}\p{N}])(?P<who>[\p{L}][\p{L}\p{N}_.\-]*)(?:['’]s|['’])\s+(?:(?:whole|entire|full|open|completed|done|own|current|pending|remaining)\s+)?(?:to-?dos?|todo\s+list|to-?do\s+list|tasks?|items?|list|stuff|things|reminders)\b",
    )
});
static BELONGING: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)\b(?:to-?dos?|tasks?|items?|list)\s+(?:of|belonging\s+to|owned\s+by|for|from)\s+(?:the\s+)?(?P<user>(?:user|account|person)\s+)?@?(?P<who>[\p{L}\p{N}][\p{L}\p{N}_.@\-]*)",
    )
});
static OTHER_PEOPLE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)\b(?P<who>(?:all|other|every|another|each|any)\s+(?:(?:the|of\s+the)\s+)?(?:other\s+)?(?:users?|people|persons?|accounts?|members?|customers?)|everyone(?:\s+else)?|everybody(?:\s+else)?|(?:someone|somebody|anyone|anybody)\s+else)\b",
    )
});
static MENTIONS_TODOS: LazyLock<Regex> = LazyLock::new(|| re(&format!(r"(?i)\b(?:{NOUN}|list)\b")));

/// Whose todos (`bob's`, `the todos of every user`), when the clause asks about someone else's.
fn others_todos(c: &str) -> Option<String> {
    if MENTIONS_TODOS.is_match(c)
        && let Some(m) = OTHER_PEOPLE.captures(c)
    {
        let who = m["who"].split_whitespace().collect::<Vec<_>>().join(" ");
        return Some(format!("the todos of {}", who.to_lowercase()));
    }
    const NOT_A_PERSON: &str = "what that it there here who where when how let today tomorrow \
                                yesterday tonight week weekend month year one this next last i \
                                he she my mine me myself your the a an every all each any \
                                other another everyone everybody";
    let is_person = |who: &str| {
        let who = who.to_lowercase();
        !NOT_A_PERSON.split_whitespace().any(|w| w == who)
    };
    if let Some(who) = POSSESSIVE.captures(c).map(|m| m["who"].to_owned())
        && is_person(&who)
    {
        return Some(format!("{who}'s"));
    }
    if let Some(m) = BELONGING.captures(c) {
        let who = &m["who"];
        // `todos for milk` is a search; only `for user bob` names a person.
        let is_for =
            m[0].to_lowercase().contains(" for ") || m[0].to_lowercase().contains(" from ");
        if is_person(who) && (m.name("user").is_some() || !is_for) && !is_status_or_noun(who) {
            return Some(format!("{who}'s"));
        }
    }
    None
}

fn is_status_or_noun(word: &str) -> bool {
    static WORD: LazyLock<Regex> = LazyLock::new(|| {
        re(&format!(
            r"(?i)^(?:{NOUN}|{STATUS}|all|them|these|those|things|stuff|mine|yours|ours)$"
        ))
    });
    WORD.is_match(word)
}

// ---- list ------------------------------------------------------------------------------------

#[derive(Clone, Copy)]
enum Word {
    Noun,
    Open,
    Done,
    Opener,
    All,
    Filler,
}

/// What a listing request may be made of: `|`-separated phrases by kind.
const LIST_VOCABULARY: &[(Word, &str)] = &[
    (
        Word::Noun,
        "to do list|to-do list|todo list|task list|to dos|todo|todos|to-do|to-dos|todo's|task|\
         tasks|item|items|list|lists|tasklist|todolist|things|stuff|entries|everything|reminders",
    ),
    (
        Word::Open,
        "to do|not yet done|not done|not finished|not completed|not complete|open|pending|\
         remaining|remain|remains|outstanding|unfinished|incomplete|undone|active|left|\
         uncompleted|unchecked|unticked|unresolved",
    ),
    (
        Word::Done,
        "checked off|ticked off|crossed off|completed|done|finished|closed|checked|ticked|resolved",
    ),
    (
        Word::Opener,
        "pull up|bring up|how many|list|show|display|view|see|get|give|fetch|print|read|tell|\
         check|what|what's|whats|what're|which|any|anything|remind|count",
    ),
    (Word::All, "all"),
    (
        Word::Filler,
        "so far|for me|right now|me|us|i|my|mine|the|our|a|an|some|of|on|in|is|are|there|do|\
         does|did|have|has|got|i've|i'm|am|still|yet|currently|current|now|today|whole|full|\
         entire|every|again|please|that|those|these|can|could|you|many|much|need|should|must|\
         gotta|be|being|been|it|up|let|how|else",
    ),
];

/// [`LIST_VOCABULARY`] as word sequences, longest first.
static LIST_PHRASES: LazyLock<Vec<(Vec<&'static str>, Word)>> = LazyLock::new(|| {
    let mut phrases: Vec<(Vec<&'static str>, Word)> = LIST_VOCABULARY
        .iter()
        .flat_map(|(word, phrases)| {
            phrases
                .split('|')
                .map(|p| (p.split_whitespace().collect(), *word))
        })
        .collect();
    phrases.sort_by_key(|(words, _)| std::cmp::Reverse(words.len()));
    phrases
});

/// The filter, when the whole clause is a listing request (`what's left`, `show my todos`).
fn list(c: &str) -> Option<ListFilter> {
    let lower = c.to_lowercase().replace('’', "'");
    let words: Vec<&str> = lower
        .split(|ch: char| ch.is_whitespace() || ",?!.:;()\"".contains(ch))
        .filter(|w| !w.is_empty())
        .collect();
    let (mut noun, mut opener, mut all, mut open, mut done) = (false, false, false, false, false);
    let mut i = 0;
    while i < words.len() {
        let rest = &words[i..];
        let (words, word) = LIST_PHRASES
            .iter()
            .find(|(phrase, _)| rest.starts_with(phrase))?;
        let len = words.len();
        match *word {
            Word::Noun => noun = true,
            Word::Open => open = true,
            Word::Done => done = true,
            Word::Opener => opener = true,
            Word::All => all = true,
            Word::Filler => {}
        }
        i += len;
    }
    let has_subject = noun || open || done || all;
    if !(has_subject && (opener || noun)) {
        return None;
    }
    let completed = match (open, done) {
        (true, false) => Some(false),
        (false, true) => Some(true),
        _ => None,
    };
    Some(ListFilter {
        completed,
        search: None,
    })
}

// ---- search ----------------------------------------------------------------------------------

const CONNECT: &str = r"(?:about|with|containing|that\s+(?:mention|mentions|contain|contains|say|says|include|includes|match|matches)|mentioning|mention|mentions|contain|contains|matching|match|including|for|related\s+to|regarding|called|named|titled|with\s+the\s+words?|like|on)";

static SEARCH_VERB_FIRST: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"(?i)^(?:find|search(?:\s+(?:for|through|in))?|look\s+(?:for|up)|lookup|filter(?:\s+(?:by|for))?)\s+(?:(?:me|my|the|all|any|a)\s+)*(?:(?P<status>{STATUS})\s+)?(?:{NOUN}\s+)?(?:{CONNECT}\s+)?(?P<term>.+)$"
    ))
});
static SEARCH_NOUN_FIRST: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"(?i)^(?:show|list|display|get|give|see|which|what|are\s+there|do\s+i\s+have|is\s+there|have\s+i\s+got|any)(?:\s+(?:me|my|the|all|any|a|of|there))*\s+(?:(?P<status>{STATUS})\s+)?{NOUN}\s+(?:(?:are|is|do|does|that|which)\s+)?{CONNECT}\s+(?P<term>.+)$"
    ))
});
static ONLY_NOUN: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"(?i)^(?:(?:my|the|all|of)\s+)*(?:{NOUN}|{LIST_NOUN})$"
    ))
});

fn search(c: &str, quotes: &[String]) -> Option<Vec<Intent>> {
    let m = SEARCH_VERB_FIRST
        .captures(c)
        .or_else(|| SEARCH_NOUN_FIRST.captures(c))?;
    let completed = m.name("status").and_then(|s| state_of(s.as_str()));
    let term = m.name("term").map_or("", |t| t.as_str());
    let term = TRAILING_LIST
        .find(term)
        .map_or(term, |t| &term[..t.start()]);
    let term = trim_punctuation(term);
    if ONLY_NOUN.is_match(term) {
        return Some(vec![Intent::List(ListFilter {
            completed,
            search: None,
        })]);
    }
    let term = single_quote(term, quotes).unwrap_or_else(|| restore(term, quotes));
    if term.trim().is_empty() {
        return None;
    }
    Some(vec![Intent::List(ListFilter {
        completed,
        search: Some(term.trim().to_owned()),
    })])
}

// ---- add -------------------------------------------------------------------------------------

static ADD_WITH_NOUN: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"(?i)^(?:add|create|insert|jot\s+down|write\s+down|note\s+down|new|put\s+(?:in|down)|(?:make|start|record|set\s+up)\s+(?:a|an|another|one|new)\b)\s+(?:(?:a|an|the|new|another|one|more|some|this|these|following)\s+)*{NOUN}(?:\s+(?:item|entry))?(?:\s*[:\-–]\s*|\s+(?:(?:to|that\s+says|saying|which\s+says|called|named|titled|for|about|reading|with\s+(?:the\s+)?(?:title|text))\s+)?|$)(?P<title>.*)$"
    ))
});
static ADD_TO_LIST: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"(?i)^(?:add|put|write|jot\s+down|note\s+down|note|pop|stick)\s+(?P<title>.+?)\s+(?:to|on|onto|in|into)\s+(?:my|the|our)\s+{LIST_NOUN}$"
    ))
});
static ADD_LIST_FIRST: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"(?i)^(?:add|put)\s+(?:to|on|onto)\s+(?:my|the|our)\s+{LIST_NOUN}\s*[:\-–]?\s*(?P<title>.*)$"
    ))
});
static ADD_PLAIN: LazyLock<Regex> = LazyLock::new(|| {
    re(r"(?i)^(?:(?:add|create)(?:\s*[:\-–]\s*|\s+)|(?:new|todo|to-?do)\s*:\s*)(?P<title>.+)$")
});
static REMIND: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)^(?:remind\s+me\s+(?:to|about|that\s+i\s+(?:need|have)\s+to)|remember\s+to|(?:don['’]?t|do\s+not)\s+(?:let\s+me\s+)?forget\s+(?:to|about))\s+(?P<title>.+)$",
    )
});
static QUOTE_LIST: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"^{PH}(?:(?:\s*,\s*(?:and\s+)?|\s+and\s+|\s*&\s*|\s+){PH})*$"
    ))
});

fn add(c: &str, quotes: &[String]) -> Option<Vec<Intent>> {
    let m = [
        &ADD_WITH_NOUN,
        &ADD_LIST_FIRST,
        &ADD_TO_LIST,
        &ADD_PLAIN,
        &REMIND,
    ]
    .iter()
    .find_map(|r| r.captures(c))?;
    let title = m.name("title").map_or("", |t| t.as_str());
    let title = TRAILING_LIST
        .find(title)
        .map_or(title, |t| &title[..t.start()]);
    let title = trim_punctuation(title);
    if title.is_empty() {
        return Some(vec![Intent::Say(Say::NeedTitle)]);
    }
    if QUOTE_LIST.is_match(title) {
        let titles = quoted_texts(title, quotes);
        if titles.iter().any(String::is_empty) {
            return Some(vec![Intent::Say(Say::NeedTitle)]);
        }
        return Some(titles.into_iter().map(Intent::Add).collect());
    }
    Some(vec![Intent::Add(restore(title, quotes))])
}

// ---- rename, done / not done, toggle, delete --------------------------------------------------

static RENAME: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)^(?:rename|re-?name|retitle|re-?title|change|update|edit|modify|set|reword)\s+(?:the\s+)?(?:(?:title|name|text|wording)\s+(?:of|for|on)\s+)?(?P<target>.+?)(?:\s*:\s*|\s+(?:to\s+(?:say|read)|so\s+(?:that\s+)?it\s+(?:says|reads)|to|into|as)\s+)(?P<title>.+)$",
    )
});
static AS_STATE: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"(?i)^(?:be\s+)?(?:marked\s+)?(?:as\s+)?(?P<state>{DONE}|{UNDONE})$"
    ))
});

fn rename(c: &str, quotes: &[String]) -> Option<Vec<Intent>> {
    let m = RENAME.captures(c)?;
    let refs = parse_refs(&m["target"], quotes, Unquoted::Any)?;
    let title = trim_punctuation(&m["title"]);
    if let Some(done) = AS_STATE.captures(title).and_then(|s| state_of(&s["state"])) {
        return Some(for_each_target(refs, BulkAction::SetDone(done), |target| {
            Intent::SetDone { target, done }
        }));
    }
    let title = single_quote(title, quotes).unwrap_or_else(|| restore(title, quotes));
    if title.is_empty() {
        return Some(vec![Intent::Say(Say::NeedTitle)]);
    }
    match refs {
        Refs::Targets(targets) if targets.len() > 1 => Some(vec![Intent::Say(Say::OneAtATime)]),
        Refs::Bulk(_) => Some(vec![Intent::Say(Say::OneAtATime)]),
        refs => Some(for_each_target(refs, BulkAction::Toggle, |target| {
            Intent::Rename {
                target,
                title: title.clone(),
            }
        })),
    }
}

const DONE_VERB: &str = r"completed|complete|finished|finish|done\s+with|closed|close|resolved|resolve|checked\s+off|check\s+off|ticked\s+off|tick\s+off|crossed\s+off|cross\s+off|crossed\s+out|cross\s+out|wrapped\s+up|wrap\s+up|checked|check|ticked|tick";
const UNDONE_VERB: &str = r"undo|undid|reopened|reopen|re-opened|re-open|unchecked|uncheck|unticked|untick|unmarked|unmark|uncompleted|uncomplete|unfinished|unfinish|restored|restore|reverted|revert";

static MARK_AS: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"(?i)^(?:mark|set|flag|tag)\s+(?P<refs>.+?)\s+(?:(?:as|to)\s+)?(?:being\s+)?(?P<state>{DONE}|{UNDONE})$"
    ))
});
static VERB_FIRST: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"(?i)^(?P<i>i(?:['’]ve|\s+have|['’]m|\s+am)?\s+)?(?:(?:just|already|now|also|finally)\s+)*(?:(?P<done>{DONE_VERB})|(?P<undone>{UNDONE_VERB}))\s+(?P<refs>.+)$"
    ))
});
static CHECK_OFF: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?i)^(?:check|tick|cross|mark)\s+(?P<refs>.+?)\s+off$"));
static STATE_LAST: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"(?i)^(?P<refs>.+?)\s+(?:(?:is|are|was|were|has\s+been|have\s+been|as)\s+)?(?:(?:now|already)\s+)?(?P<state>{DONE}|{UNDONE})$"
    ))
});

fn set_done(c: &str, quotes: &[String]) -> Option<Vec<Intent>> {
    let (refs, done) = if let Some(m) = MARK_AS.captures(c) {
        (
            parse_refs(&m["refs"], quotes, Unquoted::Any)?,
            state_of(&m["state"])?,
        )
    } else if let Some(m) = CHECK_OFF.captures(c) {
        (parse_refs(&m["refs"], quotes, Unquoted::Explicit)?, true)
    } else if let Some(m) = VERB_FIRST.captures(c) {
        let done = m.name("done").is_some();
        // `I finished calling mom`, `crossed off milk`: a report, so any words name the todo;
        // a bare imperative (`finish the report`) only with `the … one` or `the todo called …`.
        let verb = m
            .name("done")
            .or(m.name("undone"))
            .map_or("", |v| v.as_str());
        let is_report = m.name("i").is_some()
            || verb.ends_with("ed")
            || verb.contains("done")
            || verb.contains(" off")
            || verb.contains(" out");
        let unquoted = if is_report {
            Unquoted::Any
        } else {
            Unquoted::Explicit
        };
        (parse_refs(&m["refs"], quotes, unquoted)?, done)
    } else {
        let m = STATE_LAST.captures(c)?;
        match parse_refs(&m["refs"], quotes, Unquoted::Explicit)? {
            refs @ (Refs::Targets(_) | Refs::Bulk(_)) => (refs, state_of(&m["state"])?),
            Refs::Vague => return None,
        }
    };
    Some(for_each_target(refs, BulkAction::SetDone(done), |target| {
        Intent::SetDone { target, done }
    }))
}

static TOGGLE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)^(?:toggle|flip|switch)\s+(?:the\s+)?(?:(?:status|state)\s+of\s+)?(?P<refs>.+?)(?:\s+(?:status|state))?$",
    )
});

fn toggle(c: &str, quotes: &[String]) -> Option<Vec<Intent>> {
    let m = TOGGLE.captures(c)?;
    let refs = parse_refs(&m["refs"], quotes, Unquoted::Explicit)?;
    Some(for_each_target(refs, BulkAction::Toggle, Intent::Toggle))
}

static DELETE: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"(?i)^(?:delete|remove|erase|drop|trash|discard|get\s+rid\s+of|clear(?:\s+out)?|clean\s+(?:up|out)|wipe(?:\s+out)?|purge|scrap|ditch|toss|nuke|cancel|scratch|forget(?:\s+about)?|kill|rm|del|throw\s+(?:away|out))\s+(?P<refs>.+?)(?:\s+(?:from|off|of|in)\s+(?:my|the|our)\s+{LIST_NOUN})?$"
    ))
});

fn delete(c: &str, quotes: &[String]) -> Option<Vec<Intent>> {
    let m = DELETE.captures(c)?;
    let refs = parse_refs(&m["refs"], quotes, Unquoted::Any)?;
    Some(for_each_target(refs, BulkAction::Delete, Intent::Delete))
}
