//! Quoted titles: lifted out of a request before it is read, so nothing inside quotes is taken
//! as a command, and put back where a title is unquoted. Straight, curly, low-9, guillemet and
//! backtick quotes are understood; a straight apostrophe opens a quote only at a word start.

use std::sync::LazyLock;

use regex::{Captures, Regex};

use super::re;

const PH_OPEN: char = '\u{E000}';
const PH_CLOSE: char = '\u{E001}';
/// A quote placeholder, for use inside patterns.
pub(super) const PH: &str = r"\x{E000}\d+\x{E001}";

static PH_CAPTURE: LazyLock<Regex> = LazyLock::new(|| re(r"\x{E000}(\d+)\x{E001}"));

fn is_boundary(c: Option<&char>) -> bool {
    c.is_none_or(|c| c.is_whitespace() || ".,;:!?)]}".contains(*c))
}

/// The closing characters for an opening quote at `i`, if it opens one.
fn closers(chars: &[char], i: usize) -> Option<&'static [char]> {
    let prev = i.checked_sub(1).map(|p| chars[p]);
    match chars[i] {
        '"' | '“' | '„' => Some(&['"', '”', '“']),
        // Some keyboards type the closing curly quote on both sides.
        '”' if prev.is_none_or(char::is_whitespace) => Some(&['"', '”']),
        '‘' => Some(&['’', '\'']),
        '\'' if prev.is_none_or(|p| p.is_whitespace() || "(:,".contains(p)) => Some(&['\'', '’']),
        '«' => Some(&['»']),
        '`' => Some(&['`']),
        _ => None,
    }
}

/// `text` with each quoted part replaced by a placeholder, and the quoted parts (trimmed).
pub(super) fn extract_quotes(text: &str) -> (String, Vec<String>) {
    let chars: Vec<char> = text
        .chars()
        .filter(|c| !matches!(*c, PH_OPEN | PH_CLOSE))
        .collect();
    let mut held = String::with_capacity(text.len());
    let mut quotes = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if let Some(close) = closers(&chars, i) {
            let is_single = matches!(chars[i], '‘' | '\'');
            let end = (i + 1..chars.len()).find(|&j| {
                close.contains(&chars[j]) && (!is_single || is_boundary(chars.get(j + 1)))
            });
            let end = match end {
                Some(j) => Some(j),
                // An unclosed double quote runs to the end; a lone apostrophe is just text.
                None if !is_single && chars[i] != '`' => Some(chars.len()),
                None => None,
            };
            if let Some(j) = end {
                quotes.push(chars[i + 1..j].iter().collect::<String>().trim().to_owned());
                held.push(PH_OPEN);
                held.push_str(&(quotes.len() - 1).to_string());
                held.push(PH_CLOSE);
                i = j + 1;
                continue;
            }
        }
        held.push(chars[i]);
        i += 1;
    }
    (held, quotes)
}

/// `s` with placeholders put back as `"…"`.
pub(super) fn restore(s: &str, quotes: &[String]) -> String {
    PH_CAPTURE
        .replace_all(s, |c: &Captures<'_>| {
            let quote = c[1].parse::<usize>().ok().and_then(|n| quotes.get(n));
            format!("\"{}\"", quote.map_or("", String::as_str))
        })
        .into_owned()
}

/// The quoted texts of every placeholder in `s`, in order.
pub(super) fn quoted_texts(s: &str, quotes: &[String]) -> Vec<String> {
    PH_CAPTURE
        .captures_iter(s)
        .filter_map(|c| {
            c[1].parse::<usize>()
                .ok()
                .and_then(|n| quotes.get(n))
                .cloned()
        })
        .collect()
}

/// The quoted text when `s` is exactly one placeholder.
pub(super) fn single_quote(s: &str, quotes: &[String]) -> Option<String> {
    static ONE: LazyLock<Regex> = LazyLock::new(|| re(&format!(r"^{PH}$")));
    ONE.is_match(s.trim())
        .then(|| quoted_texts(s, quotes).into_iter().next())
        .flatten()
}
