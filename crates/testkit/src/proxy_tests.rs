use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::routing::get;
use hyper::body::{Bytes, Frame};

use super::*;

/// A backend on `127.0.0.1:0` that answers with its name, the `Host` it was sent and the cookie
/// it got, and sets a cookie of its own.
async fn backend(name: &'static str) -> SocketAddr {
    let app = axum::Router::new().route(
        "/",
        get(move |headers: HeaderMap| async move {
            let host = headers
                .get(header::HOST)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let cookie = headers
                .get(header::COOKIE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            (
                [(header::SET_COOKIE, format!("seen={name}; Path=/"))],
                format!("{name} {host} {cookie}"),
            )
        }),
    );
    serve(app).await
}

async fn serve(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// An address that refuses connections: a socket bound to it and never listening. It is held
/// (not dropped), so no other test's server can take the port meanwhile and answer instead.
fn refusing() -> (tokio::net::TcpSocket, SocketAddr) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = socket.local_addr().unwrap();
    (socket, addr)
}

#[tokio::test]
async fn each_request_on_one_connection_goes_to_the_next_backend() {
    let (a, b) = (backend("a").await, backend("b").await);
    let proxy = RoundRobin::start(&[a, b]).await.unwrap();
    // One client, one pooled keep-alive connection to the proxy, cookies kept.
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .pool_max_idle_per_host(1)
        .build()
        .unwrap();
    let mut names = Vec::new();
    for _ in 0..6 {
        let text = http
            .get(format!("{}/", proxy.url()))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let mut words = text.split(' ');
        let name = words.next().unwrap().to_owned();
        assert_eq!(
            words.next().unwrap(),
            format!("localhost:{}", proxy.port()),
            "the backend sees the public Host"
        );
        if let Some(previous) = names.last() {
            // The Set-Cookie of the previous answer came back as a Cookie.
            assert_eq!(words.next().unwrap(), format!("seen={previous}"));
        }
        names.push(name);
    }
    assert_eq!(names, ["a", "b", "a", "b", "a", "b"]);
    assert_eq!(proxy.counts(), [3, 3]);
    assert_eq!(proxy.order(), [0, 1, 0, 1, 0, 1]);
    assert_eq!(proxy.failed(), 0);
}

#[tokio::test]
async fn a_backend_that_refuses_connections_is_skipped() {
    let ((_held, dead), live) = (refusing(), backend("live").await);
    let proxy = RoundRobin::start(&[dead, live]).await.unwrap();
    let http = reqwest::Client::new();
    for _ in 0..4 {
        let response = http.get(format!("{}/", proxy.url())).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert!(response.text().await.unwrap().starts_with("live "));
    }
    assert_eq!(proxy.counts(), [0, 4]);
    assert_eq!(proxy.failed(), 0);

    // Marked down: skipped without trying; with every backend gone, a 502.
    let proxy = RoundRobin::start(&[live, dead]).await.unwrap();
    proxy.set_down(0, true);
    let response = http.get(format!("{}/", proxy.url())).send().await.unwrap();
    assert_eq!(response.status(), 502);
    assert_eq!(proxy.counts(), [0, 0]);
    assert_eq!(proxy.failed(), 1);
    proxy.set_down(0, false);
    let response = http.get(format!("{}/", proxy.url())).send().await.unwrap();
    assert_eq!(response.status(), 200);
}

/// A body whose frames come from a channel, as an SSE handler writes events.
struct Channel(tokio::sync::mpsc::Receiver<Bytes>);

impl hyper::body::Body for Channel {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|c| Ok(Frame::data(c))))
    }
}

#[tokio::test]
async fn server_sent_events_stream_through() {
    let (events, received) = tokio::sync::mpsc::channel::<Bytes>(4);
    let received = Arc::new(Mutex::new(Some(received)));
    let app = axum::Router::new().route(
        "/events",
        get(move || {
            let received = lock(&received).take().unwrap();
            async move {
                (
                    [(header::CONTENT_TYPE, "text/event-stream")],
                    Body::new(Channel(received)),
                )
            }
        }),
    );
    let addr = serve(app).await;
    let proxy = RoundRobin::start(&[addr]).await.unwrap();
    events.send(Bytes::from("data: one\n\n")).await.unwrap();
    let mut response = reqwest::get(format!("{}/events", proxy.url()))
        .await
        .unwrap();
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    // The first event arrives while the backend has not finished (a buffering proxy would wait
    // for the end of the body, which never comes until the second event is sent).
    let first = tokio::time::timeout(Duration::from_secs(10), response.chunk())
        .await
        .expect("the first event arrives before the stream ends")
        .unwrap()
        .unwrap();
    assert_eq!(first, "data: one\n\n");
    events.send(Bytes::from("data: two\n\n")).await.unwrap();
    drop(events);
    let mut rest = Vec::new();
    while let Some(chunk) = response.chunk().await.unwrap() {
        rest.extend_from_slice(&chunk);
    }
    assert_eq!(rest, b"data: two\n\n");
}
