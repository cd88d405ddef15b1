//! What the REST API and the MCP tools both do, with no HTTP in it: who a token belongs to, and
//! the repository operations with GitHub's rules (a comment body of 1–65,536 characters; writing
//! needs the `repo` or `public_repo` scope).

use crate::Github0;
use crate::store::repos::{Comment, Pull, PullQuery, Repo};
use crate::store::{Account, StoreError};
use crate::tokens::{digest, well_formed};

/// GitHub's limit on a comment body, in characters.
pub const MAX_COMMENT_CHARS: usize = 65_536;

/// Scopes that allow writing to a (public) repository.
pub const WRITE_SCOPES: [&str; 2] = ["repo", "public_repo"];

/// Whom a valid access token speaks for.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The person.
    pub account: Account,
    /// The app the token was issued to.
    pub client_id: String,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// SHA-256 of the token (the REST budget's key).
    pub token_hash: String,
}

impl Principal {
    /// Whether any of `accepted` was granted.
    pub fn has_any(&self, accepted: &[&str]) -> bool {
        self.scopes.iter().any(|s| accepted.contains(&s.as_str()))
    }
}

/// Why an operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// No such repository, pull request or issue.
    #[error("not found")]
    NotFound,
    /// The comment body is missing or empty.
    #[error("body is missing")]
    BodyMissing,
    /// The comment body is longer than [`MAX_COMMENT_CHARS`].
    #[error("body is too long")]
    BodyTooLong,
    /// The token lacks the scope.
    #[error("the token lacks a scope")]
    InsufficientScope,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Github0 {
    /// The principal of a live access token; `None` for anything else (unknown, expired,
    /// revoked, a refresh token, not a GitHub token at all).
    pub async fn principal(&self, token: &str) -> Result<Option<Principal>, StoreError> {
        if !well_formed(token) {
            return Ok(None);
        }
        let token_hash = digest(token);
        let Some(grant) = self
            .store()
            .live_token(&token_hash, "access", self.now())
            .await?
        else {
            return Ok(None);
        };
        let Some(account) = self.store().account(grant.account_id).await? else {
            return Ok(None);
        };
        Ok(Some(Principal {
            account,
            client_id: grant.client_id,
            scopes: grant.scope.split_whitespace().map(str::to_owned).collect(),
            token_hash,
        }))
    }

    async fn repo_or_404(&self, owner: &str, repo: &str) -> Result<Repo, ServiceError> {
        self.store()
            .repo(owner, repo)
            .await?
            .ok_or(ServiceError::NotFound)
    }

    /// A page of pull requests.
    pub async fn list_pulls(
        &self,
        owner: &str,
        repo: &str,
        query: PullQuery,
    ) -> Result<(Repo, Vec<Pull>), ServiceError> {
        let repo = self.repo_or_404(owner, repo).await?;
        let pulls = self.store().pulls(repo.id, query).await?;
        Ok((repo, pulls))
    }

    /// One pull request.
    pub async fn get_pull(
        &self,
        owner: &str,
        repo: &str,
        number: i64,
    ) -> Result<(Repo, Pull), ServiceError> {
        let repo = self.repo_or_404(owner, repo).await?;
        let pull = self
            .store()
            .pull(repo.id, number)
            .await?
            .ok_or(ServiceError::NotFound)?;
        Ok((repo, pull))
    }

    /// The repository (for `GET /repos/{owner}/{repo}`) with its open pull request count.
    pub async fn get_repo(&self, owner: &str, repo: &str) -> Result<(Repo, i64), ServiceError> {
        let repo = self.repo_or_404(owner, repo).await?;
        let open = self
            .store()
            .pulls(
                repo.id,
                PullQuery {
                    state: Some("open"),
                    by_created: true,
                    descending: true,
                    per_page: 100,
                    page: 1,
                },
            )
            .await?
            .len();
        Ok((repo, i64::try_from(open).unwrap_or(i64::MAX)))
    }

    /// Comments on issue or pull request `number`, oldest first.
    pub async fn list_comments(
        &self,
        owner: &str,
        repo: &str,
        number: i64,
        per_page: i64,
        page: i64,
    ) -> Result<(Repo, Vec<Comment>), ServiceError> {
        let repo = self.repo_or_404(owner, repo).await?;
        if self.store().pull(repo.id, number).await?.is_none() {
            return Err(ServiceError::NotFound);
        }
        let comments = self
            .store()
            .comments(repo.id, number, per_page, page)
            .await?;
        Ok((repo, comments))
    }

    /// Adds a comment by `who` to issue or pull request `number`.
    pub async fn add_comment(
        &self,
        who: &Principal,
        owner: &str,
        repo: &str,
        number: i64,
        body: &str,
    ) -> Result<(Repo, Comment), ServiceError> {
        let repo = self.repo_or_404(owner, repo).await?;
        if !who.has_any(&WRITE_SCOPES) {
            return Err(ServiceError::InsufficientScope);
        }
        if body.trim().is_empty() {
            return Err(ServiceError::BodyMissing);
        }
        if body.chars().count() > MAX_COMMENT_CHARS {
            return Err(ServiceError::BodyTooLong);
        }
        let comment = self
            .store()
            .add_comment(repo.id, number, who.account.id, body, self.now())
            .await?
            .ok_or(ServiceError::NotFound)?;
        tracing::info!(
            target: "github0::audit",
            login = %who.account.login,
            client_id = %who.client_id,
            repo = %format!("{}/{}", repo.owner.login, repo.name),
            number,
            comment_id = comment.id,
            "comment created"
        );
        Ok((repo, comment))
    }
}
