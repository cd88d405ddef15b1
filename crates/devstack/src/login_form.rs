//! idp0's login form as a client of the development stack reads it (`secure-agent login
//! --scripted`, the benchmarks' users, the tests' browser stand-in): the form's action and its
//! hidden fields, unescaped as idp0's pages escape them ([`httpserve::html::unescape`]). It
//! lives here, beside the stack's topology, because idp0 serves the form and reads none.

use anyhow::Context;

/// The action URL of the first form in `html`, resolved against `page_url`.
pub fn form_action(page_url: &str, html: &str) -> anyhow::Result<url::Url> {
    let start = html.find("<form").context("no form on the page")?;
    let action = attribute(&html[start..], "action").context("form has no action")?;
    Ok(url::Url::parse(page_url)?.join(&action)?)
}

/// All `<input type="hidden">` fields of a page, unescaped.
pub fn hidden_fields(html: &str) -> Vec<(String, String)> {
    html.split("<input")
        .skip(1)
        .filter(|tag| attribute(tag, "type").as_deref() == Some("hidden"))
        .filter_map(|tag| {
            Some((
                attribute(tag, "name")?,
                attribute(tag, "value").unwrap_or_default(),
            ))
        })
        .collect()
}

fn attribute(tag: &str, name: &str) -> Option<String> {
    let end = tag.find('>').unwrap_or(tag.len());
    let tag = &tag[..end];
    let needle = format!(" {name}=\"");
    let start = tag.find(&needle)? + needle.len();
    let value = &tag[start..start + tag[start..].find('"')?];
    Some(httpserve::html::unescape(value))
}
