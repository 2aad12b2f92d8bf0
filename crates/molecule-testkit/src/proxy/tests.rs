//! The proxy against a fake engine on another unix socket: clean forwarding
//! (bodies, headers, upgrades) and every injected shape as a raw client
//! sees it on the wire.

use super::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A fake engine: inspect answers JSON, `/echo` echoes, `/empty` is a 204,
/// `/upgrade` switches protocols and echoes raw bytes.
struct FakeEngine {
    dir: PathBuf,
    socket: PathBuf,
    task: JoinHandle<()>,
}

impl Drop for FakeEngine {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn engine_answer(mut req: Request<Incoming>) -> Result<Response<ProxyBody>, BoxError> {
    let full = |status: StatusCode, ctype: &'static str, body: Bytes| {
        let mut r = Response::new(Full::new(body).map_err(BoxError::from).boxed());
        *r.status_mut() = status;
        r.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(ctype));
        r
    };
    let path = req.uri().path().to_string();
    if path == "/upgrade" {
        let on = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            if let Ok(up) = on.await {
                let mut io = TokioIo::new(up);
                let mut buf = [0u8; 64];
                while let Ok(n @ 1..) = io.read(&mut buf).await {
                    let _ = io.write_all(&buf[..n]).await;
                }
            }
        });
        let mut r = full(StatusCode::SWITCHING_PROTOCOLS, "text/plain", Bytes::new());
        r.headers_mut()
            .insert("upgrade", HeaderValue::from_static("tcp"));
        r.headers_mut()
            .insert("connection", HeaderValue::from_static("Upgrade"));
        return Ok(r);
    }
    if path == "/empty" {
        return Ok(full(StatusCode::NO_CONTENT, "text/plain", Bytes::new()));
    }
    if path == "/echo" {
        let ctype = req.headers().get(CONTENT_TYPE).cloned();
        let length = req.headers().get(CONTENT_LENGTH).cloned();
        let body = req.into_body().collect().await?.to_bytes();
        let mut r = full(StatusCode::CREATED, "application/octet-stream", body);
        if let Some(c) = ctype {
            r.headers_mut().insert("x-seen-content-type", c);
        }
        if let Some(l) = length {
            r.headers_mut().insert("x-seen-content-length", l);
        }
        return Ok(r);
    }
    let json = format!(
        "{{\"Id\":\"abc\",\"Path\":\"{path}\",\"State\":{{\"Running\":true}},\"Pad\":\"{}\"}}",
        "x".repeat(200)
    );
    Ok(full(StatusCode::OK, "application/json", Bytes::from(json)))
}

fn fake_engine() -> FakeEngine {
    let dir = std::env::temp_dir().join(format!(
        "molecule-fake-engine-{:016x}",
        rand::random::<u64>()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let socket = dir.join("engine.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service_fn(engine_answer))
                    .with_upgrades(),
            );
        }
    });
    FakeEngine { dir, socket, task }
}

/// One keep-alive client connection to the proxy, like bollard's.
async fn client(proxy: &DockerFaultProxy) -> hyper::client::conn::http1::SendRequest<ProxyBody> {
    let stream = UnixStream::connect(proxy.socket_path()).await.unwrap();
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn.with_upgrades());
    sender
}

fn request(method: &str, path: &str, body: &'static [u8]) -> Request<ProxyBody> {
    Request::builder()
        .method(method)
        .uri(path)
        .header("host", "docker")
        .header(CONTENT_TYPE, "application/x-tar")
        .header(CONTENT_LENGTH, body.len())
        .body(
            Full::new(Bytes::from_static(body))
                .map_err(BoxError::from)
                .boxed(),
        )
        .unwrap()
}

/// Send one raw request on a fresh connection; read until EOF, an error or
/// `wait` passes. Returns what arrived and the error that ended it, if any.
async fn raw(proxy: &DockerFaultProxy, path: &str, wait: Duration) -> (String, Option<String>) {
    let mut s = UnixStream::connect(proxy.socket_path()).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: docker\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let end = loop {
        match tokio::time::timeout(wait, s.read(&mut buf)).await {
            Err(_) => break Some("still open".to_string()),
            Ok(Ok(0)) => break None,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Ok(Err(e)) => break Some(e.to_string()),
        }
        // A complete answer on a keep-alive connection: stop reading.
        let text = String::from_utf8_lossy(&got);
        if let Some((head, body)) = text.split_once("\r\n\r\n")
            && let Some(len) = head.lines().find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length: ")
                    .map(str::to_string)
            })
            && body.len() >= len.trim().parse::<usize>().unwrap()
        {
            break None;
        }
    };
    (String::from_utf8_lossy(&got).into_owned(), end)
}

const INSPECT: &str = "/v1.41/containers/ws-1/json";

#[tokio::test]
async fn forwards_bodies_headers_and_keeps_connections_alive() {
    let engine = fake_engine();
    let proxy = DockerFaultProxy::start(engine.socket.clone()).unwrap();
    assert!(proxy.host().starts_with("unix:///"));
    let mut c = client(&proxy).await;
    for _ in 0..3 {
        let resp = c
            .send_request(request("PUT", "/echo", b"tar bytes"))
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::CREATED);
        let h = resp.headers();
        assert_eq!(h["x-seen-content-type"], "application/x-tar");
        assert_eq!(h["x-seen-content-length"], "9");
        assert_eq!(h[CONTENT_TYPE], "application/octet-stream");
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"tar bytes");
    }
    let resp = c.send_request(request("GET", INSPECT, b"")).await.unwrap();
    assert_eq!(resp.headers()[CONTENT_TYPE], "application/json");
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&body).contains("\"Running\":true"));
    assert_eq!(
        proxy.counts(),
        FaultCounts {
            forwarded: 4,
            ..Default::default()
        }
    );
}

#[tokio::test]
async fn upgrades_are_spliced() {
    let engine = fake_engine();
    let proxy = DockerFaultProxy::start(engine.socket.clone()).unwrap();
    let mut c = client(&proxy).await;
    let mut req = request("POST", "/upgrade", b"");
    req.headers_mut()
        .insert("upgrade", HeaderValue::from_static("tcp"));
    req.headers_mut()
        .insert("connection", HeaderValue::from_static("Upgrade"));
    let resp = c.send_request(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::SWITCHING_PROTOCOLS);
    let mut io = TokioIo::new(hyper::upgrade::on(resp).await.unwrap());
    io.write_all(b"ping").await.unwrap();
    let mut buf = [0u8; 4];
    tokio::time::timeout(Duration::from_secs(5), io.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf, b"ping");
}

#[tokio::test]
async fn every_injected_shape_on_the_wire() {
    let engine = fake_engine();
    let proxy = DockerFaultProxy::start(engine.socket.clone()).unwrap();
    let wait = Duration::from_secs(2);
    let only = |kind| {
        proxy.set_kinds(&[kind]);
        proxy.set_transient_share(1.0);
    };

    only(Transient::IoTimeout);
    let (got, end) = raw(&proxy, INSPECT, wait).await;
    assert!(got.starts_with("HTTP/1.1 500"), "{got}");
    assert!(got.ends_with("{\"message\":\"i/o timeout\"}"), "{got}");
    assert_eq!(end, None);

    only(Transient::Eof);
    let (got, end) = raw(&proxy, INSPECT, wait).await;
    assert_eq!((got.as_str(), end), ("", None), "closed without a byte");

    only(Transient::Reset);
    let (got, end) = raw(&proxy, INSPECT, wait).await;
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    let (head, body) = got.split_once("\r\n\r\n").unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length: ")
                .map(str::to_string)
        })
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        !body.is_empty() && body.len() < len,
        "cut short: {} of {len}",
        body.len()
    );
    assert_ne!(end.as_deref(), Some("still open"));
    // Nothing to cut: the connection closes once the daemon answered.
    let (got, _) = raw(&proxy, "/empty", wait).await;
    assert_eq!(got, "");

    only(Transient::DeadlineExceeded);
    proxy.set_hold(Duration::from_millis(600));
    let (got, end) = raw(&proxy, INSPECT, Duration::from_millis(300)).await;
    assert_eq!((got.as_str(), end.as_deref()), ("", Some("still open")));
    // The answer is the daemon's own, only late.
    let (got, _) = raw(&proxy, INSPECT, wait).await;
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    assert!(got.contains("\"Running\":true"), "{got}");

    proxy.faults_off();
    proxy.set_not_found_share(1.0);
    let (got, _) = raw(&proxy, INSPECT, wait).await;
    assert!(got.starts_with("HTTP/1.1 404"), "{got}");
    assert!(
        got.ends_with("{\"message\":\"No such container: ws-1\"}"),
        "{got}"
    );
    // Only inspects get 404s.
    let (got, _) = raw(&proxy, "/v1.41/containers/json", wait).await;
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");

    let counts = proxy.counts();
    assert_eq!(
        counts,
        FaultCounts {
            forwarded: 1,
            deadline_exceeded: 2,
            eof: 1,
            reset: 2,
            io_timeout: 1,
            not_found: 1,
        }
    );
    assert_eq!((counts.transient(), counts.injected()), (6, 7));
}

#[tokio::test]
async fn filters_spare_requests_and_idle_is_detected() {
    let engine = fake_engine();
    let proxy = DockerFaultProxy::start(engine.socket.clone()).unwrap();
    proxy.set_filter(|r| r.inspected_container() == Some("ws-doomed"));
    proxy.set_not_found_share(1.0);
    let (got, _) = raw(&proxy, INSPECT, Duration::from_secs(2)).await;
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    let (got, _) = raw(
        &proxy,
        "/v1.41/containers/ws-doomed/json",
        Duration::from_secs(2),
    )
    .await;
    assert!(got.starts_with("HTTP/1.1 404"), "{got}");
    proxy.clear_filter();
    let (got, _) = raw(&proxy, INSPECT, Duration::from_secs(2)).await;
    assert!(got.starts_with("HTTP/1.1 404"), "{got}");

    proxy.faults_off();
    proxy.set_transient_share(1.0);
    proxy.set_kinds(&[Transient::DeadlineExceeded]);
    proxy.set_hold(Duration::from_millis(400));
    let held = tokio::spawn({
        let socket = proxy.socket_path().to_path_buf();
        async move {
            let mut s = UnixStream::connect(socket).await.unwrap();
            s.write_all(format!("GET {INSPECT} HTTP/1.1\r\nHost: d\r\n\r\n").as_bytes())
                .await
                .unwrap();
            let mut buf = [0u8; 512];
            let _ = s.read(&mut buf).await;
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(proxy.in_flight(), 1);
    assert!(
        !proxy
            .wait_idle(Duration::from_millis(50), Duration::from_millis(100))
            .await
    );
    assert!(
        proxy
            .wait_idle(Duration::from_millis(50), Duration::from_secs(2))
            .await
    );
    held.await.unwrap();
}

#[tokio::test]
async fn stopping_removes_the_socket() {
    let engine = fake_engine();
    let proxy = DockerFaultProxy::start(engine.socket.clone()).unwrap();
    let path = proxy.socket_path().to_path_buf();
    assert!(path.exists());
    proxy.stop();
    assert!(!path.exists());
    assert!(UnixStream::connect(&path).await.is_err());
}
