//! Server-rendered HTML: one escape function every interpolated value goes through, the page
//! layout (inline styles only, no scripts: the CSP in [`super::layers`] allows nothing else), the
//! todo list, and the error page.

use crate::domain::Todo;

use super::extract::CSRF_FIELD;

/// Escapes text for HTML element content and double-quoted attribute values.
pub(crate) fn escape(text: &str) -> String {
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

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;color:#1a1a1a}\
header{display:flex;justify-content:space-between;align-items:center;gap:1rem}\
ul{list-style:none;padding:0}li{display:flex;align-items:center;gap:.5rem;padding:.4rem 0;border-bottom:1px solid #eee}\
li span{flex:1;overflow-wrap:anywhere}li.done span{text-decoration:line-through;color:#777}\
form.inline{display:inline}input[name=title]{flex:1;padding:.4rem}form.add{display:flex;gap:.5rem}\
.error{background:#fdecea;border:1px solid #f5c2c0;padding:.6rem;border-radius:4px}\
a.button,button{padding:.35rem .8rem;cursor:pointer}";

/// A whole page; `body` must already be escaped.
pub(crate) fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{}</title><style>{STYLE}</style></head><body>{body}</body></html>\n",
        escape(title)
    )
}

fn csrf_input(csrf: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"{CSRF_FIELD}\" value=\"{}\">",
        escape(csrf)
    )
}

/// The page for someone not signed in.
pub(crate) fn welcome() -> String {
    page(
        "todo0",
        "<header><h1>todo0</h1></header><p>Your todos, the same ones your AI agent sees.</p>\
<p><a class=\"button\" href=\"/login\">Log in</a></p>",
    )
}

/// The signed-in page: the todos with forms to add, complete, uncomplete and delete.
pub(crate) fn todo_list(name: &str, csrf: &str, todos: &[Todo]) -> String {
    let csrf_input = csrf_input(csrf);
    let mut items = String::new();
    for todo in todos {
        let (class, toggle) = if todo.completed {
            (" class=\"done\"", "Undo")
        } else {
            ("", "Complete")
        };
        items.push_str(&format!(
            "<li{class}><span>{title}</span>\
<form class=\"inline\" method=\"post\" action=\"/todos/{id}/complete\">{csrf_input}<button type=\"submit\">{toggle}</button></form>\
<form class=\"inline\" method=\"post\" action=\"/todos/{id}/delete\">{csrf_input}<button type=\"submit\">Delete</button></form></li>",
            title = escape(&todo.title),
            id = todo.id,
        ));
    }
    if todos.is_empty() {
        items.push_str("<li><span>Nothing to do yet.</span></li>");
    }
    let body = format!(
        "<header><h1>todo0</h1><span>Signed in as <strong>{name}</strong></span>\
<form class=\"inline\" method=\"post\" action=\"/logout\">{csrf_input}<button type=\"submit\">Log out</button></form></header>\
<form class=\"add\" method=\"post\" action=\"/todos\">{csrf_input}\
<input name=\"title\" aria-label=\"New todo\" placeholder=\"What needs doing?\" required>\
<button type=\"submit\">Add</button></form><ul>{items}</ul>",
        name = escape(name),
    );
    page("todo0", &body)
}

/// A failure shown to a person.
pub(crate) fn error_page(status: u16, reason: &str, message: &str) -> String {
    page(
        &format!("{status} {reason} - todo0"),
        &format!(
            "<header><h1>todo0</h1></header><p class=\"error\" role=\"alert\"><strong>{}</strong> {}</p>\
<p>{}</p>",
            escape(reason),
            escape(message),
            if status == 401 {
                "<a class=\"button\" href=\"/login\">Log in</a>"
            } else {
                "<a href=\"/\">Back to your todos</a>"
            }
        ),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_interpolated_value_is_escaped() {
        let todo = Todo {
            id: 1,
            title: "<script>alert(\"x\")</script> & 'more'".into(),
            completed: false,
            created_at: String::new(),
            updated_at: String::new(),
        };
        let html = todo_list("<b>Mallory</b>", "\"><x", &[todo]);
        assert!(!html.contains("<script>"));
        assert!(!html.contains("<b>Mallory"));
        assert!(!html.contains("\"><x"));
        assert!(
            html.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;more&#39;")
        );
        assert!(!error_page(400, "Bad", "<img src=x>").contains("<img"));
        assert!(error_page(401, "Unauthorized", "log in").contains("href=\"/login\""));
    }
}
