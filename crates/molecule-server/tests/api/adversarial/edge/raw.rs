//! Raw HTTP/1.1 over TCP for the edge tests: requests `molecule-client`
//! would refuse to send or would normalise (a `Host` of our choosing, a
//! path starting with `//`, half a header), from a chosen loopback source
//! address.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// How long any single raw exchange may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(5);

/// A response as text: status code, lower-cased header block, body.
pub struct RawResponse {
    pub status: u16,
    pub headers: String,
    pub body: String,
}

impl RawResponse {
    /// The value of header `name` (lower-case), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == name).then(|| v.trim())
        })
    }
}

/// A TCP connection to `to` whose source address is `from`.
pub async fn connect_from(from: IpAddr, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.bind(SocketAddr::new(from, 0)).expect("bind source");
    tokio::time::timeout(DEADLINE, socket.connect(to))
        .await
        .expect("connect in time")
        .expect("connect")
}

/// Send `head` (request line and headers, without the final blank line)
/// with `Connection: close` and read the whole answer.
pub async fn exchange(from: IpAddr, to: SocketAddr, head: &str) -> RawResponse {
    let mut s = connect_from(from, to).await;
    let request = format!("{head}\r\nConnection: close\r\n\r\n");
    s.write_all(request.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    tokio::time::timeout(DEADLINE, s.read_to_end(&mut buf))
        .await
        .expect("answered in time")
        .expect("read");
    parse(&buf)
        .unwrap_or_else(|| panic!("not an HTTP response: {:?}", String::from_utf8_lossy(&buf)))
}

/// Read one response on a keep-alive connection (Content-Length bodies).
pub async fn read_response(s: &mut TcpStream) -> RawResponse {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    tokio::time::timeout(DEADLINE, async {
        loop {
            if let Some(end) = find(&buf, b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                let len = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                if buf.len() >= end + 4 + len {
                    return;
                }
            }
            let n = s.read(&mut chunk).await.expect("read");
            assert!(
                n > 0,
                "connection closed mid-response: {:?}",
                String::from_utf8_lossy(&buf)
            );
            buf.extend_from_slice(&chunk[..n]);
        }
    })
    .await
    .expect("answered in time");
    parse(&buf).expect("an HTTP response")
}

/// Wait until the server closes `s` (EOF or reset); `false` if it is still
/// open after `within`. Bytes the server sends first are ignored.
pub async fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    let mut chunk = [0u8; 4096];
    tokio::time::timeout(within, async {
        loop {
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

fn parse(buf: &[u8]) -> Option<RawResponse> {
    let end = find(buf, b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&buf[..end]);
    let (first, headers) = head.split_once("\r\n").unwrap_or((&head, ""));
    let status = first.split(' ').nth(1)?.parse().ok()?;
    Some(RawResponse {
        status,
        headers: headers.to_ascii_lowercase(),
        body: String::from_utf8_lossy(&buf[end + 4..]).into_owned(),
    })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Everything the server sends until it closes `s` (the test fails if it
/// is still open after [`DEADLINE`]); a reset ends it like EOF.
pub async fn read_to_close(s: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    tokio::time::timeout(DEADLINE, async {
        loop {
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await
    .expect("the server closes the connection in time");
    String::from_utf8_lossy(&buf).into_owned()
}
