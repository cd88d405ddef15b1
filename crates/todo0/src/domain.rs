//! The todo domain (no HTTP): per-user todos, validated titles, filters, and the one error type
//! every front end (MCP tools, web app, REST API) maps to its own wire format.

use serde::{Deserialize, Serialize};

/// Longest title, in characters (Unicode scalar values).
pub const MAX_TITLE_CHARS: usize = 500;

/// A todo as the outside world sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Todo {
    /// Store-wide id.
    pub id: i64,
    /// Title, 1–500 characters.
    pub title: String,
    /// Whether it is done.
    pub completed: bool,
    /// Creation time, RFC 3339 UTC.
    pub created_at: String,
    /// Last change, RFC 3339 UTC.
    pub updated_at: String,
}

/// The owner of todos: the `uid` claim when present (Okta), else `sub`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Owner(String);

impl Owner {
    /// An owner id; empty ids are refused.
    pub fn new(id: impl Into<String>) -> Result<Self, TodoError> {
        let id = id.into();
        if id.trim().is_empty() || id.len() > 256 {
            return Err(TodoError::Invalid("owner id must be 1–256 bytes".into()));
        }
        Ok(Self(id))
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A validated title: trimmed, 1–500 characters, any Unicode, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Title(String);

impl Title {
    /// Validates and trims.
    pub fn parse(raw: &str) -> Result<Self, TodoError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(TodoError::Invalid("title must not be empty".into()));
        }
        let chars = trimmed.chars().count();
        if chars > MAX_TITLE_CHARS {
            return Err(TodoError::Invalid(format!(
                "title is {chars} characters; the limit is {MAX_TITLE_CHARS}"
            )));
        }
        if trimmed.chars().any(|c| c.is_control() && c != '\t') {
            return Err(TodoError::Invalid(
                "title must not contain control characters".into(),
            ));
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// The title.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A validated change to one todo: a new title, a completion state, or both, applied by
/// [`TodoStore::update`](crate::store::TodoStore::update) as one write. The MCP tool
/// `update-todo` and the REST API's `PATCH /todos/{id}` both build it here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TodoChange {
    title: Option<Title>,
    completed: Option<bool>,
}

impl TodoChange {
    /// Validates a change as it comes from outside; at least one field must be given, and
    /// everything is validated before anything is changed.
    pub fn parse(title: Option<&str>, completed: Option<bool>) -> Result<Self, TodoError> {
        if title.is_none() && completed.is_none() {
            return Err(TodoError::Invalid(
                "give a new title, completed, or both".into(),
            ));
        }
        Ok(Self {
            title: title.map(Title::parse).transpose()?,
            completed,
        })
    }

    /// The new title, if any.
    pub fn title(&self) -> Option<&Title> {
        self.title.as_ref()
    }

    /// The new completion state, if any.
    pub fn completed(&self) -> Option<bool> {
        self.completed
    }
}

/// Which todos to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only done (`Some(true)`) or open (`Some(false)`) todos.
    pub completed: Option<bool>,
    /// Only titles containing this text (case-insensitive).
    pub text: Option<String>,
}

/// A todo id as it comes from outside: positive and within `i64`.
pub fn parse_id(id: i64) -> Result<i64, TodoError> {
    if id <= 0 {
        Err(TodoError::NotFound(id))
    } else {
        Ok(id)
    }
}

/// Why a todo operation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TodoError {
    /// No todo with this id belongs to the caller (another user's todo looks exactly the same).
    #[error("todo {0} not found")]
    NotFound(i64),
    /// Bad input.
    #[error("{0}")]
    Invalid(String),
    /// The database failed or is unreachable; the message is safe to show.
    #[error("the todo store is unavailable: {0}")]
    Unavailable(String),
}

impl From<sqlx::Error> for TodoError {
    fn from(e: sqlx::Error) -> Self {
        Self::Unavailable(describe(&e))
    }
}

/// A database failure in words: pool timeouts and I/O errors are what a vanished database
/// looks like.
pub(crate) fn describe(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::PoolTimedOut => "timed out waiting for a database connection".into(),
        sqlx::Error::Io(_) => "database connection failed".into(),
        sqlx::Error::Database(db) => format!("database error: {}", db.message()),
        other => other.to_string(),
    }
}

/// RFC 3339 UTC text of a Unix time.
pub fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_are_trimmed_and_bounded_in_characters() {
        assert_eq!(
            Title::parse("  prep the demo \n").map(|t| t.0).ok(),
            Some("prep the demo".into())
        );
        assert!(Title::parse("   ").is_err());
        assert!(
            Title::parse(&"é".repeat(500)).is_ok(),
            "500 characters, 1000 bytes"
        );
        assert!(Title::parse(&"é".repeat(501)).is_err());
        assert!(Title::parse("a\u{0}b").is_err());
        assert!(
            Title::parse("'; DROP TABLE todos; --").is_ok(),
            "stored as data, never as SQL"
        );
    }

    #[test]
    fn a_change_needs_a_field_and_a_valid_title() -> Result<(), TodoError> {
        assert!(matches!(
            TodoChange::parse(None, None),
            Err(TodoError::Invalid(m)) if m == "give a new title, completed, or both"
        ));
        assert!(
            TodoChange::parse(Some("  "), Some(true)).is_err(),
            "validated before any change"
        );
        let both = TodoChange::parse(Some(" new "), Some(false))?;
        assert_eq!(both.title().map(Title::as_str), Some("new"));
        assert_eq!(both.completed(), Some(false));
        let only_done = TodoChange::parse(None, Some(true))?;
        assert_eq!(
            (only_done.title(), only_done.completed()),
            (None, Some(true))
        );
        Ok(())
    }

    #[test]
    fn ids_must_be_positive() {
        assert!(matches!(parse_id(0), Err(TodoError::NotFound(0))));
        assert!(matches!(parse_id(-5), Err(TodoError::NotFound(-5))));
        assert_eq!(parse_id(7).ok(), Some(7));
    }

    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    }
}
