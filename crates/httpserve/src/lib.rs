//! How every secure-agent server accepts connections, in one place: HTTP/1.1 (RFC 9112) with
//! `TCP_NODELAY`, the client's address as axum's `ConnectInfo<SocketAddr>`, a deadline for a
//! request's header section that also closes idle keep-alive connections, and graceful shutdown.
//!
//! `axum::serve` gives hyper no timer, so a client that opens a connection and sends its headers
//! one byte a minute (or nothing at all) holds a socket and a task for ever; enough of them
//! exhaust the process's file descriptors. Here hyper's `header_read_timeout` is armed whenever a
//! connection waits for a request head, so both slow and idle connections are closed.
//!
//! A [`Listener`] may carry a TLS configuration ([`tls`]): the handshake then runs in the
//! connection's own task, under the same deadline, so a client that never finishes it cannot hold
//! the accept loop.
//!
//! Small things every server shares live here too: [`fsutil`] (private files), [`html`] (the
//! one HTML escape every server-rendered page uses) and [`headers`] (security headers as
//! tower-http layers).

pub mod fsutil;
pub mod headers;
pub mod html;
pub mod tls;

use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tower::ServiceExt;

/// How long a client has to send a request's whole header section, and how long an idle
/// keep-alive connection stays open.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// How long shutdown waits for requests in flight (long SSE streams included) before it stops.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Settings of [`serve_with`].
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// See [`HEADER_READ_TIMEOUT`].
    pub header_read_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read_timeout: HEADER_READ_TIMEOUT,
        }
    }
}

/// A bound socket, served over plain HTTP or, with a TLS configuration, over HTTPS.
pub struct Listener {
    tcp: tokio::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
}

impl Listener {
    /// Serves HTTPS with `config` on this socket.
    #[must_use]
    pub fn with_tls(mut self, config: std::sync::Arc<rustls::ServerConfig>) -> Self {
        self.tls = Some(tokio_rustls::TlsAcceptor::from(config));
        self
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.tcp.local_addr()
    }

    /// Whether connections are served over TLS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }
}

impl From<tokio::net::TcpListener> for Listener {
    fn from(tcp: tokio::net::TcpListener) -> Self {
        Self { tcp, tls: None }
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, with the default [`Limits`].
pub async fn serve(
    listener: impl Into<Listener>,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, app, shutdown, Limits::default()).await
}

/// Serves `app` on `listener` until `shutdown` resolves.
pub async fn serve_with(
    listener: impl Into<Listener>,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    limits: Limits,
) -> std::io::Result<()> {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let Listener { tcp: listener, tls } = listener.into();
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait a moment instead of spinning.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            app.clone().oneshot(request.map(axum::body::Body::new))
        });
        match &tls {
            None => {
                let connection =
                    graceful.watch(http.serve_connection(TokioIo::new(stream), service));
                tokio::spawn(async move {
                    if let Err(e) = connection.await {
                        tracing::trace!(error = %e, "connection ended with an error");
                    }
                });
            }
            Some(acceptor) => {
                let handshake = acceptor.accept(stream);
                let http = http.clone();
                let watcher = graceful.watcher();
                let deadline = limits.header_read_timeout;
                tokio::spawn(async move {
                    let stream = match tokio::time::timeout(deadline, handshake).await {
                        Ok(Ok(stream)) => stream,
                        Ok(Err(e)) => {
                            tracing::debug!(error = %e, %peer, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake timed out");
                            return;
                        }
                    };
                    let connection =
                        watcher.watch(http.serve_connection(TokioIo::new(stream), service));
                    if let Err(e) = connection.await {
                        tracing::trace!(error = %e, "connection ended with an error");
                    }
                });
            }
        }
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::debug!("requests still in flight at shutdown were cut off");
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use axum::routing::get;
    use std::net::SocketAddr;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn start(limits: Limits) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new().route(
            "/peer",
            get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() }),
        );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(serve_with(
            listener,
            app,
            async move {
                let _ = stopped.await;
            },
            limits,
        ));
        (addr, stop)
    }

    /// Reads until the server closes the connection; `None` if it is still open after `limit`.
    async fn closed_within(stream: &mut tokio::net::TcpStream, limit: Duration) -> Option<Vec<u8>> {
        let mut seen = Vec::new();
        let mut buf = [0u8; 1024];
        tokio::time::timeout(limit, async {
            loop {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return seen,
                    Ok(n) => seen.extend_from_slice(&buf[..n]),
                }
            }
        })
        .await
        .ok()
    }

    const SHORT: Limits = Limits {
        header_read_timeout: Duration::from_millis(300),
    };

    #[tokio::test]
    async fn a_request_is_served_with_the_clients_address() {
        let (addr, _stop) = start(Limits::default()).await;
        let body = reqwest::get(format!("http://{addr}/peer"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(body.starts_with("127.0.0.1:"), "{body}");
    }

    #[tokio::test]
    async fn a_slow_header_connection_is_closed_at_the_deadline() {
        let (addr, _stop) = start(SHORT).await;
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"GET /peer HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        // The head is never finished.
        assert!(
            closed_within(&mut stream, Duration::from_secs(5))
                .await
                .is_some(),
            "the server closes a connection whose header never ends"
        );
    }

    #[tokio::test]
    async fn an_idle_connection_is_closed_and_a_silent_one_too() {
        let (addr, _stop) = start(SHORT).await;
        let mut idle = tokio::net::TcpStream::connect(addr).await.unwrap();
        idle.write_all(b"GET /peer HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let answer = closed_within(&mut idle, Duration::from_secs(5))
            .await
            .unwrap();
        assert!(answer.starts_with(b"HTTP/1.1 200"), "served before closing");
        let mut silent = tokio::net::TcpStream::connect(addr).await.unwrap();
        assert!(
            closed_within(&mut silent, Duration::from_secs(5))
                .await
                .is_some()
        );
    }

    #[tokio::test]
    #[allow(clippy::disallowed_methods)] // a real TLS client checks against the real time
    async fn https_is_served_with_the_local_ca_and_a_silent_handshake_is_cut_off() {
        let dir = tempfile::tempdir().unwrap();
        let (ca, _) = tls::LocalCa::ensure(dir.path(), std::time::SystemTime::now()).unwrap();
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        let listener = Listener::from(tcp).with_tls(tls::server_config(&ca.cert, &ca.key).unwrap());
        assert!(listener.is_tls());
        let app = Router::new().route(
            "/peer",
            get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() }),
        );
        tokio::spawn(serve_with(listener, app, std::future::pending(), SHORT));
        let ca_cert = reqwest::Certificate::from_pem(&std::fs::read(&ca.ca_cert).unwrap()).unwrap();
        let trusting = reqwest::Client::builder()
            .tls_certs_only([ca_cert])
            .build()
            .unwrap();
        for host in ["localhost", "127.0.0.1"] {
            let url = format!("https://{host}:{}/peer", addr.port());
            let body = trusting
                .get(&url)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            assert!(body.starts_with("127.0.0.1:"), "{body}");
        }
        // A client that does not trust the local CA is refused at the handshake.
        let error = reqwest::get(format!("https://localhost:{}/peer", addr.port()))
            .await
            .unwrap_err();
        assert!(error.is_connect(), "{error:?}");
        // Plain http to the TLS port gets no HTTP answer.
        assert!(reqwest::get(format!("http://{addr}/peer")).await.is_err());
        // A connection that never sends a ClientHello is closed at the deadline.
        let mut silent = tokio::net::TcpStream::connect(addr).await.unwrap();
        assert!(
            closed_within(&mut silent, Duration::from_secs(5))
                .await
                .is_some()
        );
    }

    #[tokio::test]
    async fn shutdown_stops_accepting() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, Router::new(), async move {
            let _ = stopped.await;
        }));
        stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    }
}
