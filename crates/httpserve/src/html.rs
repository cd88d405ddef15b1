//! HTML escaping for server-rendered pages, in one place: every value a page interpolates goes
//! through [`escape`], which makes it safe as element content and as a single- or double-quoted
//! attribute value (the five characters the HTML Standard's "escaping a string" and OWASP's XSS
//! cheat sheet name). [`unescape`] is its exact inverse, for clients that read our own pages back.

/// Escapes `&`, `<`, `>`, `"` and `'` for HTML element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Reverses [`escape`] (only the five references it writes; `&amp;` last, so `&amp;lt;` stays
/// `&lt;`).
pub fn unescape(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_five_special_characters_are_escaped_and_nothing_else() {
        assert_eq!(escape("<>&\"'"), "&lt;&gt;&amp;&quot;&#39;");
        assert_eq!(
            escape("<script>alert(\"x\")</script> & 'more'"),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;more&#39;"
        );
        assert_eq!(escape("plain text, é ✓ 漢字"), "plain text, é ✓ 漢字");
        assert_eq!(escape(""), "");
    }

    #[test]
    fn an_entity_in_the_input_is_escaped_again_not_passed_through() {
        assert_eq!(escape("&lt;b&gt;"), "&amp;lt;b&amp;gt;");
    }

    #[test]
    fn unescape_reverses_escape() {
        for text in [
            "<>&\"'",
            "&lt;already escaped&gt;",
            "&amp;quot;",
            "a=1&b=2",
            "",
        ] {
            assert_eq!(unescape(&escape(text)), text, "{text:?}");
        }
    }
}
