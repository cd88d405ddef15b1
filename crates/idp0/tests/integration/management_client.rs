//! A client of idp0's management API for the tests: the admin token read from the data
//! directory, `SSWS` on every call, 202 operations polled, `Link: rel="next"` followed.

use reqwest::{Method, StatusCode};
use serde_json::Value;
use testkit::IdpHandle;

/// A management API client holding the admin token read from the data directory.
pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
    pub token: String,
}

pub struct Reply {
    pub status: StatusCode,
    pub location: Option<String>,
    pub links: Vec<String>,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Api {
    pub fn new(idp: &IdpHandle) -> Self {
        let token = std::fs::read_to_string(idp.data_dir.join(idp0::admin::TOKEN_FILE)).unwrap();
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: idp.issuer.clone(),
            token: token.trim().to_owned(),
        }
    }

    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.call_as(method, path, body, Some(&format!("SSWS {}", self.token)))
            .await
    }

    pub async fn call_as(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        authorization: Option<&str>,
    ) -> Reply {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        };
        let mut request = self.http.request(method, url);
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let header = |name: &str| {
            response
                .headers()
                .get_all(name)
                .iter()
                .map(|v| v.to_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        };
        let location = header("location").into_iter().next();
        let links = header("link");
        let headers = response.headers().clone();
        let bytes = response.bytes().await.unwrap();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            location,
            links,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Value {
        let reply = self.call(Method::GET, path, None).await;
        assert_eq!(reply.status, StatusCode::OK, "GET {path}: {}", reply.body);
        reply.body
    }

    pub async fn post(&self, path: &str, body: Value, expect: StatusCode) -> Reply {
        let reply = self.call(Method::POST, path, Some(body)).await;
        assert_eq!(reply.status, expect, "POST {path}: {}", reply.body);
        reply
    }

    pub async fn send(&self, method: Method, path: &str, expect: StatusCode) -> Reply {
        let reply = self.call(method.clone(), path, None).await;
        assert_eq!(reply.status, expect, "{method} {path}: {}", reply.body);
        reply
    }

    /// Polls a 202's operation to COMPLETED and answers its `resource.id`.
    pub async fn completed(&self, reply: &Reply) -> String {
        let location = reply.location.clone().expect("202 with a Location");
        let operation = self.get(&location).await;
        assert_eq!(operation["status"], "COMPLETED");
        operation["resource"]["id"].as_str().unwrap().to_owned()
    }

    /// Every item of a list, following `Link: rel="next"`.
    pub async fn list(&self, path: &str) -> Vec<Value> {
        let mut items = Vec::new();
        let mut next = Some(path.to_owned());
        while let Some(page) = next.take() {
            let reply = self.call(Method::GET, &page, None).await;
            assert_eq!(reply.status, StatusCode::OK);
            match reply.body {
                Value::Array(page) => items.extend(page),
                other => items.extend(other["data"].as_array().unwrap().clone()),
            }
            next = next_link(&reply.links);
        }
        items
    }
}

pub fn next_link(links: &[String]) -> Option<String> {
    links.iter().flat_map(|l| l.split(',')).find_map(|part| {
        let (target, rel) = part.trim().split_once(';')?;
        (rel.trim() == "rel=\"next\"").then(|| {
            target
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_owned()
        })
    })
}

pub fn assert_okta_error(body: &Value, code: &str) {
    assert_eq!(body["errorCode"], code, "{body}");
    assert_eq!(body["errorLink"], code);
    assert!(body["errorSummary"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(
        body["errorId"]
            .as_str()
            .is_some_and(|s| s.starts_with("oae"))
    );
    assert!(body["errorCauses"].is_array());
}
