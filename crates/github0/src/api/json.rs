//! GitHub's response objects (the fields real objects carry), with every URL built from the
//! sandbox's own base URLs: `web` (html_url) and `api` (url, *_url).

use base64::Engine;
use protocol::UnixTime;
use serde_json::{Value, json};

use crate::store::Account;
use crate::store::repos::{Comment, Pull, Repo};

/// The base URLs objects point at.
#[derive(Debug, Clone)]
pub struct Urls {
    /// Web base, no trailing slash (`http://localhost:5003`).
    pub web: String,
    /// API base, no trailing slash (`http://localhost:5003/api/v3`).
    pub api: String,
}

/// RFC 3339 in UTC with a `Z`, as GitHub writes times.
pub fn timestamp(t: UnixTime) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

fn node_id(kind: &str, id: i64) -> String {
    let text = format!("{:02}:{kind}{id}", kind.len());
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// A simple user (the `user`, `owner` of other objects).
pub fn simple_user(urls: &Urls, account: &Account) -> Value {
    let (web, api, login) = (&urls.web, &urls.api, &account.login);
    let user = format!("{api}/users/{login}");
    json!({
        "login": login,
        "id": account.id,
        "node_id": node_id(&account.kind, account.id),
        "avatar_url": format!("{web}/avatars/u/{}?v=4", account.id),
        "gravatar_id": "",
        "url": user,
        "html_url": format!("{web}/{login}"),
        "followers_url": format!("{user}/followers"),
        "following_url": format!("{user}/following{{/other_user}}"),
        "gists_url": format!("{user}/gists{{/gist_id}}"),
        "starred_url": format!("{user}/starred{{/owner}}{{/repo}}"),
        "subscriptions_url": format!("{user}/subscriptions"),
        "organizations_url": format!("{user}/orgs"),
        "repos_url": format!("{user}/repos"),
        "events_url": format!("{user}/events{{/privacy}}"),
        "received_events_url": format!("{user}/received_events"),
        "type": account.kind,
        "user_view_type": "public",
        "site_admin": false,
    })
}

/// `GET /user`: the authenticated user, with the private fields.
pub fn private_user(urls: &Urls, account: &Account) -> Value {
    let mut user = simple_user(urls, account);
    if let Some(object) = user.as_object_mut() {
        let extra = json!({
            "name": account.name,
            "company": null,
            "blog": "",
            "location": null,
            "email": null,
            "hireable": null,
            "bio": "A person of the github0 sandbox.",
            "twitter_username": null,
            "notification_email": null,
            "public_repos": 0,
            "public_gists": 0,
            "followers": 0,
            "following": 0,
            "created_at": timestamp(account.created_at),
            "updated_at": timestamp(account.created_at),
            "private_gists": 0,
            "total_private_repos": 0,
            "owned_private_repos": 0,
            "disk_usage": 0,
            "collaborators": 0,
            "two_factor_authentication": false,
            "plan": {"name": "free", "space": 976_562_499, "collaborators": 0, "private_repos": 10_000},
        });
        if let Value::Object(extra) = extra {
            object.extend(extra);
        }
    }
    user
}

/// A repository.
pub fn repo(urls: &Urls, repo: &Repo, open_issues: i64) -> Value {
    let full = format!("{}/{}", repo.owner.login, repo.name);
    let api = format!("{}/repos/{full}", urls.api);
    let html = format!("{}/{full}", urls.web);
    let host = url::Url::parse(&urls.web)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default();
    json!({
        "id": repo.id,
        "node_id": node_id("Repository", repo.id),
        "name": repo.name,
        "full_name": full,
        "private": false,
        "owner": simple_user(urls, &repo.owner),
        "html_url": html,
        "description": repo.description,
        "fork": false,
        "url": api,
        "forks_url": format!("{api}/forks"),
        "keys_url": format!("{api}/keys{{/key_id}}"),
        "collaborators_url": format!("{api}/collaborators{{/collaborator}}"),
        "teams_url": format!("{api}/teams"),
        "hooks_url": format!("{api}/hooks"),
        "issue_events_url": format!("{api}/issues/events{{/number}}"),
        "events_url": format!("{api}/events"),
        "assignees_url": format!("{api}/assignees{{/user}}"),
        "branches_url": format!("{api}/branches{{/branch}}"),
        "tags_url": format!("{api}/tags"),
        "labels_url": format!("{api}/labels{{/name}}"),
        "languages_url": format!("{api}/languages"),
        "contributors_url": format!("{api}/contributors"),
        "commits_url": format!("{api}/commits{{/sha}}"),
        "comments_url": format!("{api}/comments{{/number}}"),
        "issue_comment_url": format!("{api}/issues/comments{{/number}}"),
        "contents_url": format!("{api}/contents/{{+path}}"),
        "issues_url": format!("{api}/issues{{/number}}"),
        "pulls_url": format!("{api}/pulls{{/number}}"),
        "milestones_url": format!("{api}/milestones{{/number}}"),
        "created_at": timestamp(repo.created_at),
        "updated_at": timestamp(repo.created_at),
        "pushed_at": timestamp(repo.created_at),
        "git_url": format!("git://{host}/{full}.git"),
        "ssh_url": format!("git@{host}:{full}.git"),
        "clone_url": format!("{html}.git"),
        "homepage": null,
        "size": 0,
        "stargazers_count": 0,
        "watchers_count": 0,
        "language": "Rust",
        "has_issues": true,
        "has_projects": false,
        "has_downloads": true,
        "has_wiki": false,
        "has_pages": false,
        "has_discussions": false,
        "forks_count": 0,
        "mirror_url": null,
        "archived": false,
        "disabled": false,
        "open_issues_count": open_issues,
        "license": null,
        "allow_forking": true,
        "is_template": false,
        "web_commit_signoff_required": false,
        "topics": [],
        "visibility": "public",
        "forks": 0,
        "open_issues": open_issues,
        "watchers": 0,
        "default_branch": repo.default_branch,
    })
}

fn branch(urls: &Urls, r: &Repo, reference: &str, sha: &str) -> Value {
    json!({
        "label": format!("{}:{reference}", r.owner.login),
        "ref": reference,
        "sha": sha,
        "user": simple_user(urls, &r.owner),
        "repo": repo(urls, r, 0),
    })
}

fn association(account: &Account, r: &Repo, otherwise: &'static str) -> &'static str {
    if account.id == r.owner.id {
        "OWNER"
    } else {
        otherwise
    }
}

/// A pull request; `full` adds the fields of `GET …/pulls/{number}`.
pub fn pull(urls: &Urls, r: &Repo, p: &Pull, full: bool) -> Value {
    let full_name = format!("{}/{}", r.owner.login, r.name);
    let api = format!("{}/repos/{full_name}", urls.api);
    let html = format!("{}/{full_name}/pull/{}", urls.web, p.number);
    let self_url = format!("{api}/pulls/{}", p.number);
    let issue_url = format!("{api}/issues/{}", p.number);
    let mut value = json!({
        "url": self_url,
        "id": p.id,
        "node_id": node_id("PullRequest", p.id),
        "html_url": html,
        "diff_url": format!("{html}.diff"),
        "patch_url": format!("{html}.patch"),
        "issue_url": issue_url,
        "commits_url": format!("{self_url}/commits"),
        "review_comments_url": format!("{self_url}/comments"),
        "review_comment_url": format!("{api}/pulls/comments{{/number}}"),
        "comments_url": format!("{issue_url}/comments"),
        "statuses_url": format!("{api}/statuses/{}", p.head_sha),
        "number": p.number,
        "state": p.state,
        "locked": false,
        "title": p.title,
        "user": simple_user(urls, &p.author),
        "body": p.body,
        "labels": [],
        "milestone": null,
        "active_lock_reason": null,
        "created_at": timestamp(p.created_at),
        "updated_at": timestamp(p.updated_at),
        "closed_at": p.closed_at.map(timestamp),
        "merged_at": null,
        "merge_commit_sha": null,
        "assignee": null,
        "assignees": [],
        "requested_reviewers": [],
        "requested_teams": [],
        "head": branch(urls, r, &p.head_ref, &p.head_sha),
        "base": branch(urls, r, &p.base_ref, &p.base_sha),
        "_links": {
            "self": {"href": self_url},
            "html": {"href": html},
            "issue": {"href": issue_url},
            "comments": {"href": format!("{issue_url}/comments")},
            "review_comments": {"href": format!("{self_url}/comments")},
            "review_comment": {"href": format!("{api}/pulls/comments{{/number}}")},
            "commits": {"href": format!("{self_url}/commits")},
            "statuses": {"href": format!("{api}/statuses/{}", p.head_sha)},
        },
        "author_association": association(&p.author, r, "CONTRIBUTOR"),
        "auto_merge": null,
        "draft": false,
    });
    if full && let Some(object) = value.as_object_mut() {
        let open = p.state == "open";
        let extra = json!({
            "merged": false,
            "mergeable": if open { json!(true) } else { Value::Null },
            "rebaseable": if open { json!(true) } else { Value::Null },
            "mergeable_state": if open { "clean" } else { "unknown" },
            "merged_by": null,
            "comments": p.comments,
            "review_comments": 0,
            "maintainer_can_modify": false,
            "commits": p.commits,
            "additions": p.additions,
            "deletions": p.deletions,
            "changed_files": p.changed_files,
        });
        if let Value::Object(extra) = extra {
            object.extend(extra);
        }
    }
    value
}

/// An issue comment.
pub fn comment(urls: &Urls, r: &Repo, c: &Comment) -> Value {
    let full_name = format!("{}/{}", r.owner.login, r.name);
    let api = format!("{}/repos/{full_name}", urls.api);
    let url = format!("{api}/issues/comments/{}", c.id);
    json!({
        "url": url,
        "html_url": format!("{}/{full_name}/pull/{}#issuecomment-{}", urls.web, c.number, c.id),
        "issue_url": format!("{api}/issues/{}", c.number),
        "id": c.id,
        "node_id": node_id("IssueComment", c.id),
        "user": simple_user(urls, &c.author),
        "created_at": timestamp(c.created_at),
        "updated_at": timestamp(c.updated_at),
        "body": c.body,
        "author_association": association(&c.author, r, "NONE"),
        "performed_via_github_app": null,
        "reactions": {
            "url": format!("{url}/reactions"),
            "total_count": 0, "+1": 0, "-1": 0, "laugh": 0, "hooray": 0,
            "confused": 0, "heart": 0, "rocket": 0, "eyes": 0,
        },
    })
}
