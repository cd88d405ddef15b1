//! The loopback redirect listener of a native app (RFC 8252 §7.3): `http://127.0.0.1:<port>/callback`
//! on an ephemeral port, bound to the loopback interface only. It hands over the first
//! authorization response that carries this login's `state`; any other request is answered with
//! a refusal and ignored, so a local process cannot end the login with a forged response.

use std::net::Ipv4Addr;

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use tokio::sync::{mpsc, oneshot};

/// The authorization response's parameters (RFC 6749 §4.1.2, §4.1.2.1; RFC 9207).
pub(crate) struct Callback {
    pub(crate) code: Option<String>,
    pub(crate) iss: Option<String>,
    pub(crate) error: Option<String>,
    pub(crate) error_description: Option<String>,
}

#[derive(Clone)]
struct Expect {
    state: String,
    tx: mpsc::Sender<Callback>,
}

/// A running listener; stops when dropped.
pub(crate) struct Loopback {
    pub(crate) redirect_uri: String,
    rx: mpsc::Receiver<Callback>,
    _stop: oneshot::Sender<()>,
}

impl Loopback {
    /// Binds `127.0.0.1:0` and serves `/callback` for a login with `state`.
    pub(crate) async fn bind(state: &str) -> anyhow::Result<Self> {
        Self::bind_port(state, 0).await
    }

    /// Binds `127.0.0.1:<port>` (0: an ephemeral one), for a client whose registered redirect
    /// URI names a fixed port.
    pub(crate) async fn bind_port(state: &str, port: u16) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port))
            .await
            .map_err(|e| {
                anyhow::anyhow!("cannot listen on a loopback port for the redirect: {e}")
            })?;
        let port = listener.local_addr()?.port();
        let (tx, rx) = mpsc::channel(1);
        let (stop, stopped) = oneshot::channel::<()>();
        let app = Router::new()
            .route("/callback", get(get_callback))
            .with_state(Expect {
                state: state.to_owned(),
                tx,
            });
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(Self {
            redirect_uri: format!("http://127.0.0.1:{port}/callback"),
            rx,
            _stop: stop,
        })
    }

    /// The authorization response for this login (waits as long as the caller lets it).
    pub(crate) async fn callback(&mut self) -> anyhow::Result<Callback> {
        self.rx
            .recv()
            .await
            .ok_or_else(|| anyhow::anyhow!("the loopback listener stopped"))
    }
}

async fn get_callback(State(expect): State<Expect>, RawQuery(query): RawQuery) -> Response {
    let mut pairs = std::collections::HashMap::new();
    for (name, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if pairs
            .insert(name.into_owned(), value.into_owned())
            .is_some()
        {
            return page(StatusCode::BAD_REQUEST, "A parameter is repeated.");
        }
    }
    let state_matches = pairs
        .get("state")
        .is_some_and(|s| protocol::constant_time::is_equal(s, &expect.state));
    if !state_matches {
        return page(
            StatusCode::BAD_REQUEST,
            "This is not the login this command started. Run secure-agent login again.",
        );
    }
    let callback = Callback {
        code: pairs.remove("code"),
        iss: pairs.remove("iss"),
        error: pairs.remove("error"),
        error_description: pairs.remove("error_description"),
    };
    let failed = callback.error.is_some();
    if expect.tx.try_send(callback).is_err() {
        return page(
            StatusCode::CONFLICT,
            "This login has already been answered.",
        );
    }
    if failed {
        page(
            StatusCode::OK,
            "The sign-in did not succeed. The terminal says why.",
        )
    } else {
        page(
            StatusCode::OK,
            "You are signed in to secure-agent. You can close this window and return to the terminal.",
        )
    }
}

fn page(status: StatusCode, message: &'static str) -> Response {
    let body = format!(
        "<!doctype html><meta charset=\"utf-8\"><title>secure-agent login</title><p>{message}</p>"
    );
    (status, [(header::CACHE_CONTROL, "no-store")], Html(body)).into_response()
}
