//! Repositories, pull requests and issue comments, and the seed every new database gets.

use protocol::UnixTime;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::{Account, Store, StoreError};

/// A repository with its owner.
#[derive(Debug, Clone)]
pub struct Repo {
    /// GitHub's numeric id.
    pub id: i64,
    /// The owner.
    pub owner: Account,
    /// The name.
    pub name: String,
    /// The description.
    pub description: String,
    /// The default branch.
    pub default_branch: String,
    /// When created.
    pub created_at: UnixTime,
}

/// A pull request.
#[derive(Debug, Clone)]
pub struct Pull {
    /// GitHub's numeric id.
    pub id: i64,
    /// Its number in the repository.
    pub number: i64,
    /// Title.
    pub title: String,
    /// Body (Markdown).
    pub body: String,
    /// `open` or `closed`.
    pub state: String,
    /// Who opened it.
    pub author: Account,
    /// Head branch and commit.
    pub head_ref: String,
    /// Head commit.
    pub head_sha: String,
    /// Base branch.
    pub base_ref: String,
    /// Base commit.
    pub base_sha: String,
    /// Diff size.
    pub additions: i64,
    /// Diff size.
    pub deletions: i64,
    /// Files changed.
    pub changed_files: i64,
    /// Commits.
    pub commits: i64,
    /// Conversation comments.
    pub comments: i64,
    /// Times.
    pub created_at: UnixTime,
    /// Times.
    pub updated_at: UnixTime,
    /// Times.
    pub closed_at: Option<UnixTime>,
}

/// An issue comment.
#[derive(Debug, Clone)]
pub struct Comment {
    /// GitHub's numeric id.
    pub id: i64,
    /// The issue or pull request number.
    pub number: i64,
    /// The author.
    pub author: Account,
    /// The body.
    pub body: String,
    /// Times.
    pub created_at: UnixTime,
    /// Times.
    pub updated_at: UnixTime,
}

/// Which pull requests to list, in which order.
#[derive(Debug, Clone, Copy)]
pub struct PullQuery {
    /// `Some("open")`, `Some("closed")` or `None` for all.
    pub state: Option<&'static str>,
    /// Sort by `created_at` (true) or `updated_at` (false).
    pub by_created: bool,
    /// Descending.
    pub descending: bool,
    /// Page size (1–100).
    pub per_page: i64,
    /// Page, from 1.
    pub page: i64,
}

fn account_prefixed(row: &SqliteRow, prefix: &str) -> Result<Account, sqlx::Error> {
    Ok(Account {
        id: row.try_get(format!("{prefix}id").as_str())?,
        login: row.try_get(format!("{prefix}login").as_str())?,
        kind: row.try_get(format!("{prefix}kind").as_str())?,
        name: row.try_get(format!("{prefix}name").as_str())?,
        password_hash: None,
        created_at: row.try_get(format!("{prefix}created_at").as_str())?,
    })
}

const PULL_SELECT: &str = "SELECT p.*, a.id AS a_id, a.login AS a_login, a.kind AS a_kind,
    a.name AS a_name, a.created_at AS a_created_at,
    (SELECT count(*) FROM comments c WHERE c.repo_id = p.repo_id AND c.number = p.number) AS n_comments
    FROM pulls p JOIN accounts a ON a.id = p.author_id";

fn pull_from_row(row: &SqliteRow) -> Result<Pull, sqlx::Error> {
    Ok(Pull {
        id: row.try_get("id")?,
        number: row.try_get("number")?,
        title: row.try_get("title")?,
        body: row.try_get("body")?,
        state: row.try_get("state")?,
        author: account_prefixed(row, "a_")?,
        head_ref: row.try_get("head_ref")?,
        head_sha: row.try_get("head_sha")?,
        base_ref: row.try_get("base_ref")?,
        base_sha: row.try_get("base_sha")?,
        additions: row.try_get("additions")?,
        deletions: row.try_get("deletions")?,
        changed_files: row.try_get("changed_files")?,
        commits: row.try_get("commits")?,
        comments: row.try_get("n_comments")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        closed_at: row.try_get("closed_at")?,
    })
}

const COMMENT_SELECT: &str = "SELECT c.*, a.id AS a_id, a.login AS a_login, a.kind AS a_kind,
    a.name AS a_name, a.created_at AS a_created_at
    FROM comments c JOIN accounts a ON a.id = c.author_id";

fn comment_from_row(row: &SqliteRow) -> Result<Comment, sqlx::Error> {
    Ok(Comment {
        id: row.try_get("id")?,
        number: row.try_get("number")?,
        author: account_prefixed(row, "a_")?,
        body: row.try_get("body")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

impl Store {
    /// The repository `owner/name` (case-insensitive).
    pub async fn repo(&self, owner: &str, name: &str) -> Result<Option<Repo>, StoreError> {
        let row = sqlx::query(
            "SELECT r.*, a.id AS a_id, a.login AS a_login, a.kind AS a_kind, a.name AS a_name,
             a.created_at AS a_created_at
             FROM repos r JOIN accounts a ON a.id = r.owner_id
             WHERE a.login = ?1 COLLATE NOCASE AND r.name = ?2 COLLATE NOCASE",
        )
        .bind(owner)
        .bind(name)
        .fetch_optional(self.pool())
        .await?;
        row.map(|row| {
            Ok(Repo {
                id: row.try_get("id")?,
                owner: account_prefixed(&row, "a_")?,
                name: row.try_get("name")?,
                description: row.try_get("description")?,
                default_branch: row.try_get("default_branch")?,
                created_at: row.try_get("created_at")?,
            })
        })
        .transpose()
        .map_err(StoreError::Database)
    }

    /// A page of a repository's pull requests.
    pub async fn pulls(&self, repo_id: i64, query: PullQuery) -> Result<Vec<Pull>, StoreError> {
        let order = match (query.by_created, query.descending) {
            (true, true) => "p.created_at DESC, p.number DESC",
            (true, false) => "p.created_at ASC, p.number ASC",
            (false, true) => "p.updated_at DESC, p.number DESC",
            (false, false) => "p.updated_at ASC, p.number ASC",
        };
        let sql = format!(
            "{PULL_SELECT} WHERE p.repo_id = ?1 AND (?2 IS NULL OR p.state = ?2)
             ORDER BY {order} LIMIT ?3 OFFSET ?4"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(repo_id)
            .bind(query.state)
            .bind(query.per_page)
            .bind((query.page - 1).saturating_mul(query.per_page))
            .fetch_all(self.pool())
            .await?;
        Ok(rows.iter().map(pull_from_row).collect::<Result<_, _>>()?)
    }

    /// One pull request.
    pub async fn pull(&self, repo_id: i64, number: i64) -> Result<Option<Pull>, StoreError> {
        let sql = format!("{PULL_SELECT} WHERE p.repo_id = ?1 AND p.number = ?2");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(repo_id)
            .bind(number)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.as_ref().map(pull_from_row).transpose()?)
    }

    /// Adds a comment to issue or pull request `number`; `None` if there is no such number.
    pub async fn add_comment(
        &self,
        repo_id: i64,
        number: i64,
        author_id: i64,
        body: &str,
        now: UnixTime,
    ) -> Result<Option<Comment>, StoreError> {
        let mut tx = self.pool().begin().await?;
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO comments (repo_id, number, author_id, body, created_at, updated_at)
             SELECT ?1, ?2, ?3, ?4, ?5, ?5 WHERE EXISTS
               (SELECT 1 FROM pulls WHERE repo_id = ?1 AND number = ?2)
             RETURNING id",
        )
        .bind(repo_id)
        .bind(number)
        .bind(author_id)
        .bind(body)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(id) = id else {
            return Ok(None);
        };
        sqlx::query("UPDATE pulls SET updated_at = ?1 WHERE repo_id = ?2 AND number = ?3")
            .bind(now)
            .bind(repo_id)
            .bind(number)
            .execute(&mut *tx)
            .await?;
        let sql = format!("{COMMENT_SELECT} WHERE c.id = ?1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(comment_from_row(&row)?))
    }

    /// A page of an issue's comments, oldest first.
    pub async fn comments(
        &self,
        repo_id: i64,
        number: i64,
        per_page: i64,
        page: i64,
    ) -> Result<Vec<Comment>, StoreError> {
        let sql = format!(
            "{COMMENT_SELECT} WHERE c.repo_id = ?1 AND c.number = ?2 ORDER BY c.id LIMIT ?3 OFFSET ?4"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(repo_id)
            .bind(number)
            .bind(per_page)
            .bind((page - 1).saturating_mul(per_page))
            .fetch_all(self.pool())
            .await?;
        Ok(rows
            .iter()
            .map(comment_from_row)
            .collect::<Result<_, _>>()?)
    }

    /// Seeds the sandbox's organisations, authors, repositories and pull requests: each row is
    /// created only if missing, so any number of starts leave exactly one of each.
    pub async fn seed(&self, now: UnixTime) -> Result<(), StoreError> {
        let acme = self
            .ensure_account("acme", "Organization", "Acme Corp", now)
            .await?;
        let mona = self
            .ensure_account("mona", "User", "Mona Lisa Octocat", now)
            .await?;
        let hubot = self.ensure_account("hubot", "User", "Hubot", now).await?;
        let widgets = self
            .ensure_repo(
                acme.id,
                "widgets",
                "Widgets for every occasion (sandbox)",
                now,
            )
            .await?;
        let gadgets = self
            .ensure_repo(
                acme.id,
                "gadgets",
                "Gadgets that go with the widgets (sandbox)",
                now,
            )
            .await?;
        let seeds = [
            (
                widgets,
                1,
                "Add widget size validation",
                "Widgets larger than the crate are now refused with a clear message.",
                "open",
                mona.id,
                "mona/size-validation",
                42,
                7,
                3,
                2,
            ),
            (
                widgets,
                2,
                "Document the widget assembly steps",
                "Adds a step-by-step assembly guide to the README.",
                "open",
                hubot.id,
                "hubot/assembly-docs",
                120,
                4,
                1,
                1,
            ),
            (
                widgets,
                3,
                "Bump gear ratio to 3:1",
                "Superseded by a later change.",
                "closed",
                mona.id,
                "mona/gear-ratio",
                1,
                1,
                1,
                1,
            ),
            (
                gadgets,
                1,
                "Gadget pairing over Bluetooth",
                "First cut of pairing a gadget with a widget.",
                "open",
                hubot.id,
                "hubot/pairing",
                310,
                12,
                9,
                5,
            ),
        ];
        for (repo_id, number, title, body, state, author, head, adds, dels, files, commits) in seeds
        {
            // Fixed commit ids per pull request, so a second start finds the same ones.
            let sha = |salt: &str| {
                crate::tokens::digest(&format!("{repo_id}/{number}/{salt}"))[..40].to_owned()
            };
            let created = now - 86_400 * (5 - number);
            sqlx::query(
                "INSERT INTO pulls (repo_id, number, title, body, state, author_id, head_ref,
                 head_sha, base_ref, base_sha, additions, deletions, changed_files, commits,
                 created_at, updated_at, closed_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'main', ?9, ?10, ?11, ?12, ?13, ?14, ?14,
                 CASE WHEN ?5 = 'closed' THEN ?14 END)
                 ON CONFLICT (repo_id, number) DO NOTHING",
            )
            .bind(repo_id)
            .bind(number)
            .bind(title)
            .bind(body)
            .bind(state)
            .bind(author)
            .bind(head)
            .bind(sha("head"))
            .bind(sha("base"))
            .bind(adds)
            .bind(dels)
            .bind(files)
            .bind(commits)
            .bind(created)
            .execute(self.pool())
            .await?;
        }
        Ok(())
    }

    async fn ensure_repo(
        &self,
        owner_id: i64,
        name: &str,
        description: &str,
        now: UnixTime,
    ) -> Result<i64, StoreError> {
        sqlx::query(
            "INSERT INTO repos (owner_id, name, description, default_branch, created_at)
             VALUES (?1, ?2, ?3, 'main', ?4) ON CONFLICT (owner_id, name) DO NOTHING",
        )
        .bind(owner_id)
        .bind(name)
        .bind(description)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(
            sqlx::query_scalar("SELECT id FROM repos WHERE owner_id = ?1 AND name = ?2")
                .bind(owner_id)
                .bind(name)
                .fetch_one(self.pool())
                .await?,
        )
    }
}
