//! Server-rendered HTML: every interpolated value goes through the workspace's one escape
//! function ([`httpserve::html::escape`]), the page
//! layout (the app's own stylesheet, no inline styles, no scripts: the CSP in [`super::layers`]
//! allows nothing else), the todo list with its ids, counts and filter links, and the error page.

use crate::domain::{MAX_TITLE_CHARS, Todo};

use super::extract::CSRF_FIELD;

use httpserve::html::escape;

/// Where the app serves its stylesheet ([`super::assets`]).
pub(crate) const STYLESHEET_PATH: &str = "/assets/todo0.css";

/// The logo: a rounded square with a check mark, coloured by the stylesheet.
const LOGO: &str = "<svg class=\"brand-logo\" viewBox=\"0 0 24 24\" aria-hidden=\"true\" focusable=\"false\">\
<rect class=\"brand-logo-box\" x=\"2.5\" y=\"2.5\" width=\"19\" height=\"19\" rx=\"5\"/>\
<path class=\"brand-logo-mark\" d=\"M7.5 12.3l3 3 6-6.3\"/></svg>";

/// The welcome card's icon: a person.
const PERSON_ICON: &str = "<circle cx=\"12\" cy=\"8\" r=\"4\"/><path d=\"M4 21a8 8 0 0 1 16 0\"/>";
/// The error card's icon: a warning sign.
const ALERT_ICON: &str = "<path d=\"M12 3 2 20h20Z\"/><path d=\"M12 10v4M12 17h.01\"/>";

/// Which todos the page shows: `GET /?show=open|done|all` (plain links, no script).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Show {
    /// Every todo.
    #[default]
    All,
    /// Those not done.
    Open,
    /// Those done.
    Done,
}

impl Show {
    const EVERY: [Self; 3] = [Self::All, Self::Open, Self::Done];

    fn includes(self, todo: &Todo) -> bool {
        match self {
            Self::All => true,
            Self::Open => !todo.completed,
            Self::Done => todo.completed,
        }
    }

    fn href(self) -> &'static str {
        match self {
            Self::All => "/",
            Self::Open => "/?show=open",
            Self::Done => "/?show=done",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::All => "All",
            Self::Open => "Open",
            Self::Done => "Done",
        }
    }

    /// What the list says when this filter matches nothing.
    fn empty_text(self, counts: Counts) -> &'static str {
        match self {
            Self::All => "Nothing to do yet. Add a todo above, or ask your agent to.",
            Self::Open if counts.done > 0 => "Nothing open: everything is done.",
            Self::Open => "Nothing open.",
            Self::Done => "Nothing done yet.",
        }
    }
}

/// How many of a person's todos are open and done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) open: usize,
    pub(crate) done: usize,
}

impl Counts {
    pub(crate) fn of(todos: &[Todo]) -> Self {
        let done = todos.iter().filter(|t| t.completed).count();
        Self {
            open: todos.len() - done,
            done,
        }
    }

    fn of_filter(self, show: Show) -> usize {
        match show {
            Show::All => self.open + self.done,
            Show::Open => self.open,
            Show::Done => self.done,
        }
    }
}

/// A whole page; `header_actions` and `main` must already be escaped. The only styles are
/// the app's own stylesheet, and there is no script.
fn layout(title: &str, header_actions: &str, main: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1, viewport-fit=cover\">\
<meta name=\"color-scheme\" content=\"light dark\">\
<meta name=\"referrer\" content=\"no-referrer\">\
<title>{title}</title><link rel=\"stylesheet\" href=\"{STYLESHEET_PATH}\"></head>\
<body><a class=\"skip-link\" href=\"#main\">Skip to the content</a>\
<header class=\"app-header\"><div class=\"brand\">{LOGO}<span class=\"app-name\">todo0</span></div>\
<div class=\"header-actions\">{header_actions}</div></header>\
{main}</body></html>\n",
        title = escape(title),
    )
}

/// A centred card with an icon, a heading, a message (a `<p>`) and one action (the welcome and
/// error pages); all but `title` already escaped.
fn prompt_page(title: &str, icon: &str, heading: &str, message: &str, action: &str) -> String {
    let card_class = if icon == ALERT_ICON {
        " error-card"
    } else {
        ""
    };
    layout(
        title,
        "",
        &format!(
            "<main id=\"main\" class=\"app-main center\">\
<section class=\"card prompt-card{card_class}\" aria-labelledby=\"prompt-title\">\
<svg class=\"prompt-icon\" viewBox=\"0 0 24 24\" aria-hidden=\"true\" focusable=\"false\">{icon}</svg>\
<h1 id=\"prompt-title\" class=\"prompt-title\">{heading}</h1>{message}{action}</section></main>"
        ),
    )
}

fn csrf_input(csrf: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"{CSRF_FIELD}\" value=\"{}\">",
        escape(csrf)
    )
}

/// Up to two initials for the avatar.
fn initials(name: &str) -> String {
    name.split_whitespace()
        .filter_map(|word| word.chars().find(|c| c.is_alphanumeric()))
        .take(2)
        .flat_map(char::to_uppercase)
        .collect()
}

/// The page for someone not signed in.
pub(crate) fn welcome() -> String {
    prompt_page(
        "todo0",
        PERSON_ICON,
        "Nobody is logged in",
        "<p class=\"muted\">todo0 keeps your todos: the same ones your AI agent reads and \
changes for you, with your permission. Log in to see them.</p>",
        "<a class=\"button primary large\" href=\"/login\">Log in</a>",
    )
}

/// One todo: its id as the agent and the API call it, its title, and the toggle and delete
/// forms, whose buttons name the todo for screen readers ("Mark done #4", "Delete #4").
fn todo_item(todo: &Todo, csrf_input: &str) -> String {
    let (class, state, toggle) = if todo.completed {
        (
            " done",
            "<span class=\"visually-hidden\"> (done)</span>",
            "Reopen",
        )
    } else {
        ("", "", "Mark done")
    };
    format!(
        "<li class=\"todo{class}\" id=\"todo-{id}\"><span class=\"todo-id\">#{id}</span>\
<span class=\"todo-title\">{title}{state}</span><span class=\"todo-actions\">\
<form method=\"post\" action=\"/todos/{id}/complete\">{csrf_input}<button type=\"submit\" class=\"button secondary small\">{toggle}<span class=\"visually-hidden\"> #{id}</span></button></form>\
<form method=\"post\" action=\"/todos/{id}/delete\">{csrf_input}<button type=\"submit\" class=\"button danger small\">Delete<span class=\"visually-hidden\"> #{id}</span></button></form>\
</span></li>",
        id = todo.id,
        title = escape(&todo.title),
    )
}

/// The signed-in page: the filter links with the counts, the form to add a todo, and the
/// todos `show` selects (all of `todos` are the person's, in id order).
pub(crate) fn todo_list(name: &str, csrf: &str, todos: &[Todo], show: Show) -> String {
    let csrf_input = csrf_input(csrf);
    let counts = Counts::of(todos);
    let mut filters = String::new();
    for choice in Show::EVERY {
        let current = if choice == show {
            " aria-current=\"page\""
        } else {
            ""
        };
        filters.push_str(&format!(
            "<li><a class=\"filter\" href=\"{href}\"{current}>{label} <span class=\"count\">{count}</span></a></li>",
            href = choice.href(),
            label = choice.label(),
            count = counts.of_filter(choice),
        ));
    }
    let items: String = todos
        .iter()
        .filter(|todo| show.includes(todo))
        .map(|todo| todo_item(todo, &csrf_input))
        .collect();
    let list = if items.is_empty() {
        format!("<p class=\"empty\">{}</p>", show.empty_text(counts))
    } else {
        format!(
            "<ul class=\"todo-list\" aria-label=\"{label} todos\">{items}</ul>",
            label = show.label()
        )
    };
    let avatar = escape(&initials(name));
    let name = escape(name);
    let header = format!(
        "<span class=\"user-chip\"><span class=\"user-avatar\" aria-hidden=\"true\">{avatar}</span>\
<span class=\"user-name\"><span class=\"user-label\">Signed in as </span><strong>{name}</strong></span></span>\
<form class=\"inline\" method=\"post\" action=\"/logout\">{csrf_input}<button type=\"submit\" class=\"button secondary small\">Log out</button></form>",
    );
    let main = format!(
        "<main id=\"main\" class=\"app-main\"><section class=\"card todo-card\" aria-labelledby=\"todos-title\">\
<h1 id=\"todos-title\" class=\"card-title\">Your todos</h1>\
<p class=\"lead muted\">The same todos your agent sees, with the same numbers: ask it about #4 and it means the one marked #4 here.</p>\
<form class=\"add-form\" method=\"post\" action=\"/todos\">{csrf_input}\
<span class=\"field\"><label class=\"field-label\" for=\"new-title\">New todo</label>\
<input id=\"new-title\" class=\"text-input\" name=\"title\" placeholder=\"What needs doing?\" maxlength=\"{MAX_TITLE_CHARS}\" autocomplete=\"off\" required></span>\
<button type=\"submit\" class=\"button primary\">Add</button></form>\
<nav aria-label=\"Show todos\"><ul class=\"filters\">{filters}</ul></nav>\
{list}\
<p class=\"footnote muted\">{open} open, {done} done, {all} in all.</p></section></main>",
        open = counts.open,
        done = counts.done,
        all = counts.open + counts.done,
    );
    let title = match show {
        Show::All => "Your todos - todo0".to_owned(),
        other => format!("{} todos - todo0", other.label()),
    };
    layout(&title, &header, &main)
}

/// A failure shown to a person.
pub(crate) fn error_page(status: u16, reason: &str, message: &str) -> String {
    prompt_page(
        &format!("{status} {reason} - todo0"),
        ALERT_ICON,
        &escape(reason),
        &format!("<p role=\"alert\">{}</p>", escape(message)),
        if status == 401 {
            "<a class=\"button primary large\" href=\"/login\">Log in</a>"
        } else {
            "<a class=\"button secondary\" href=\"/\">Back to your todos</a>"
        },
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn todo(id: i64, title: &str, completed: bool) -> Todo {
        Todo {
            id,
            title: title.into(),
            completed,
            created_at: String::new(),
            updated_at: String::new(),
        }
    }

    #[test]
    fn every_interpolated_value_is_escaped() {
        let todo = todo(1, "<script>alert(\"x\")</script> & 'more'", false);
        let html = todo_list("<b>Mallory</b>", "\"><x", &[todo], Show::All);
        assert!(!html.contains("<script>"));
        assert!(!html.contains("<b>Mallory"));
        assert!(!html.contains("\"><x"));
        assert!(
            html.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;more&#39;")
        );
        assert!(html.contains("aria-hidden=\"true\">B</span>"), "initials");
        assert!(!error_page(400, "Bad", "<img src=x>").contains("<img"));
        assert!(error_page(401, "Unauthorized", "log in").contains("href=\"/login\""));
    }

    #[test]
    fn no_page_has_inline_styles_or_scripts_and_all_link_the_stylesheet() {
        let todos = [todo(4, "a", false), todo(9, "b", true)];
        for page in [
            welcome(),
            todo_list("Alice", "t", &todos, Show::All),
            todo_list("Alice", "t", &[], Show::Done),
            error_page(403, "Forbidden", "no"),
        ] {
            assert!(page.contains("<link rel=\"stylesheet\" href=\"/assets/todo0.css\">"));
            for banned in [
                "<style",
                "style=",
                "<script",
                "javascript:",
                "onclick",
                "onsubmit",
            ] {
                assert!(!page.contains(banned), "{banned} in {page}");
            }
        }
    }

    #[test]
    fn the_list_shows_ids_counts_and_the_chosen_filter() {
        let todos = [
            todo(4, "write slides", false),
            todo(7, "book room", true),
            todo(12, "send invite", false),
        ];
        let all = todo_list("Alice", "t", &todos, Show::All);
        for id in [4, 7, 12] {
            assert!(all.contains(&format!("<span class=\"todo-id\">#{id}</span>")));
        }
        assert!(all.contains(
            "<a class=\"filter\" href=\"/\" aria-current=\"page\">All <span class=\"count\">3</span></a>"
        ));
        assert!(all.contains(
            "<a class=\"filter\" href=\"/?show=open\">Open <span class=\"count\">2</span></a>"
        ));
        assert!(all.contains(
            "<a class=\"filter\" href=\"/?show=done\">Done <span class=\"count\">1</span></a>"
        ));
        assert!(all.contains("2 open, 1 done, 3 in all."));
        assert!(all.contains("<li class=\"todo done\" id=\"todo-7\">"));
        assert!(all.contains("Reopen<span class=\"visually-hidden\"> #7</span>"));
        assert!(all.contains("Mark done<span class=\"visually-hidden\"> #4</span>"));
        assert!(all.contains("Delete<span class=\"visually-hidden\"> #12</span>"));

        let open = todo_list("Alice", "t", &todos, Show::Open);
        assert!(open.contains("#4") && open.contains("#12") && !open.contains("book room"));
        assert!(open.contains("href=\"/?show=open\" aria-current=\"page\""));
        assert!(
            open.contains("Done <span class=\"count\">1</span>"),
            "counts of all"
        );
        let done = todo_list("Alice", "t", &todos, Show::Done);
        assert!(done.contains("book room") && !done.contains("write slides"));
        assert!(done.matches("aria-current").count() == 1);

        let none_done = todo_list("Alice", "t", &todos[..1], Show::Done);
        assert!(none_done.contains("Nothing done yet."));
        assert!(!none_done.contains("<ul class=\"todo-list\""));
    }

    #[test]
    fn the_add_form_and_buttons_have_labels() {
        let page = todo_list("Alice Example", "t", &[], Show::All);
        assert!(page.contains("<label class=\"field-label\" for=\"new-title\">New todo</label>"));
        assert!(page.contains("<input id=\"new-title\""));
        assert!(page.contains("Signed in as </span><strong>Alice Example</strong>"));
        assert!(page.contains("aria-hidden=\"true\">AE</span>"));
        assert!(
            page.contains(
                "<button type=\"submit\" class=\"button secondary small\">Log out</button>"
            )
        );
        assert!(page.contains("Nothing to do yet."));
    }
}
