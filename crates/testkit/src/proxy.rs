//! A round-robin HTTP/1.1 reverse proxy for tests, standing in for the load balancer in front of
//! a service's replicas (issue 10, "Running at scale").
//!
//! It balances **each request**, not each connection: consecutive requests on one keep-alive
//! connection go to the next backend in turn, so a test proves that no replica relies on having
//! seen the previous request. Like a real load balancer it moves on to the next backend when one
//! refuses the connection (nothing was sent, so nothing can have happened there), and answers
//! `502` when a backend fails after the request went out (that request may have run; a real
//! balancer does not replay a non-idempotent request either). Requests and responses stream
//! through (server-sent events arrive as they are written), and every end-to-end header passes
//! unchanged — `Host`, `Cookie`, `Set-Cookie` — so the services see exactly what the person's
//! browser sent to the public address. Hop-by-hop headers (RFC 9110 §7.6.1) are dropped.
//!
//! The proxy counts the requests each backend served and records their order, so a test can
//! assert the spread; a backend can be marked down (skipped, as after a failed health check) and
//! backends can be added after the proxy listens (its address goes into the services'
//! configuration before they start).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::TokioIo;

/// One backend: where it listens, whether it is taken out of rotation, what it served.
struct Backend {
    addr: SocketAddr,
    down: AtomicBool,
    served: AtomicU64,
}

struct Shared {
    backends: Mutex<Vec<Arc<Backend>>>,
    next: AtomicUsize,
    /// `(ticket, backend index)` of every forwarded request: the ticket is the rotation's
    /// counter when the backend was picked, so sorting by it gives the rotation's own order
    /// whatever order concurrent requests finished connecting in.
    order: Mutex<Vec<(usize, usize)>>,
    /// Requests that reached no backend or lost it midway (answered 502).
    failed: AtomicU64,
}

/// A running round-robin proxy on `127.0.0.1`; it stops when dropped.
pub struct RoundRobin {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl RoundRobin {
    /// Listens on `127.0.0.1:0` and forwards to `backends` (more may be added later).
    pub async fn start(backends: &[SocketAddr]) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            backends: Mutex::new(Vec::new()),
            next: AtomicUsize::new(0),
            order: Mutex::new(Vec::new()),
            failed: AtomicU64::new(0),
        });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let app = axum::Router::new()
            .fallback(forward)
            .with_state(shared.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        let proxy = Self {
            addr,
            shared,
            stop: Some(stop),
        };
        for backend in backends {
            proxy.add(*backend);
        }
        Ok(proxy)
    }

    /// Where the proxy listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Its public base URL as people reach it: `http://localhost:PORT`.
    pub fn url(&self) -> String {
        format!("http://localhost:{}", self.addr.port())
    }

    /// Adds a backend at the end of the rotation; returns its index.
    pub fn add(&self, addr: SocketAddr) -> usize {
        let mut backends = lock(&self.shared.backends);
        backends.push(Arc::new(Backend {
            addr,
            down: AtomicBool::new(false),
            served: AtomicU64::new(0),
        }));
        backends.len() - 1
    }

    /// Takes backend `index` out of the rotation (`true`) or puts it back (`false`).
    pub fn set_down(&self, index: usize, down: bool) {
        if let Some(backend) = lock(&self.shared.backends).get(index) {
            backend.down.store(down, Ordering::SeqCst);
        }
    }

    /// Requests each backend served, by index.
    pub fn counts(&self) -> Vec<u64> {
        lock(&self.shared.backends)
            .iter()
            .map(|b| b.served.load(Ordering::SeqCst))
            .collect()
    }

    /// The backend index of every forwarded request so far, in the order the rotation picked
    /// them (with every backend up, consecutive entries differ).
    pub fn order(&self) -> Vec<usize> {
        let mut order = lock(&self.shared.order).clone();
        order.sort_unstable();
        order.into_iter().map(|(_, index)| index).collect()
    }

    /// Requests answered 502: no backend took the connection, or one failed midway.
    pub fn failed(&self) -> u64 {
        self.shared.failed.load(Ordering::SeqCst)
    }
}

impl Drop for RoundRobin {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A poisoned lock only means another test thread panicked; the data is still usable.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Forwards one request to the next backend that accepts a connection.
async fn forward(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let backends: Vec<Arc<Backend>> = lock(&shared.backends).clone();
    let count = backends.len();
    let mut connected = None;
    for _ in 0..count {
        let ticket = shared.next.fetch_add(1, Ordering::SeqCst);
        let index = ticket % count;
        let backend = &backends[index];
        if backend.down.load(Ordering::SeqCst) {
            continue;
        }
        // Refused: nothing was sent, so the next backend may take the request.
        if let Ok(stream) = tokio::net::TcpStream::connect(backend.addr).await {
            let _ = stream.set_nodelay(true);
            connected = Some((ticket, index, stream));
            break;
        }
    }
    let Some((ticket, index, stream)) = connected else {
        shared.failed.fetch_add(1, Ordering::SeqCst);
        return (
            StatusCode::BAD_GATEWAY,
            "no backend accepted the connection",
        )
            .into_response();
    };
    let Ok((mut sender, connection)) =
        hyper::client::conn::http1::handshake::<_, Body>(TokioIo::new(stream)).await
    else {
        shared.failed.fetch_add(1, Ordering::SeqCst);
        return (StatusCode::BAD_GATEWAY, "the backend failed the handshake").into_response();
    };
    tokio::spawn(connection);
    let backend = &backends[index];
    backend.served.fetch_add(1, Ordering::SeqCst);
    lock(&shared.order).push((ticket, index));

    let (mut parts, body) = request.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    match sender.send_request(Request::from_parts(parts, body)).await {
        Ok(response) => {
            let (mut parts, body) = response.into_parts();
            strip_hop_by_hop(&mut parts.headers);
            Response::from_parts(parts, Body::new(body))
        }
        Err(_) => {
            shared.failed.fetch_add(1, Ordering::SeqCst);
            (StatusCode::BAD_GATEWAY, "the backend failed").into_response()
        }
    }
}

/// Removes the hop-by-hop headers and any header the `Connection` header names.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::try_from(name.trim()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [
        header::CONNECTION,
        HeaderName::from_static("keep-alive"),
        header::PROXY_AUTHENTICATE,
        header::PROXY_AUTHORIZATION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
    ] {
        headers.remove(name);
    }
}

#[cfg(test)]
#[path = "proxy_tests.rs"]
mod tests;
