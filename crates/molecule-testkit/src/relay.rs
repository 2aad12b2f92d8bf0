//! A TCP relay in front of a real server (a replica's PostgreSQL) that
//! partitions the one process connected through it, two ways:
//!
//! - [`CutRelay::cut`]: a partition that resets connections. The relayed
//!   connections are closed and new ones refused (accepted, then closed at
//!   once) until [`CutRelay::restore`].
//! - [`CutRelay::vanish`]: the server's host vanishes (a failover, a dropped
//!   route). The server sees its connections end (its sessions and their
//!   locks go); the process sees nothing at all: its connections stay open
//!   and silent, and new ones hang. After [`CutRelay::restore`], a vanished
//!   connection is closed only when the process sends on it, as a host that
//!   forgot the connection answers with a reset; until then it stays
//!   silent. New connections go through again.
//!
//! The server and everyone connected to it directly are untouched.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Forward,
    Cut,
    Vanished,
}

pub struct CutRelay {
    addr: SocketAddr,
    mode: watch::Sender<Mode>,
    refused: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl CutRelay {
    /// Listen on a free loopback port and forward to `target`.
    pub async fn start(target: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (mode, _) = watch::channel(Mode::Forward);
        let refused = Arc::new(AtomicUsize::new(0));
        let (state, count) = (mode.clone(), refused.clone());
        let task = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let mut mode = state.subscribe();
                let now = *mode.borrow_and_update();
                if now != Mode::Forward {
                    count.fetch_add(1, Ordering::Relaxed);
                }
                if now == Mode::Cut {
                    drop(inbound);
                    continue;
                }
                tokio::spawn(relay(inbound, target, mode));
            }
        });
        Ok(Self {
            addr,
            mode,
            refused,
            task,
        })
    }

    /// Where clients connect instead of the target.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Close every relayed connection and refuse new ones.
    pub fn cut(&self) {
        self.mode.send_replace(Mode::Cut);
    }

    /// End every relayed connection on the server's side only, and hold new
    /// ones: the server's host vanished, as the process sees it.
    pub fn vanish(&self) {
        self.mode.send_replace(Mode::Vanished);
    }

    /// Forward new connections again.
    pub fn restore(&self) {
        self.mode.send_replace(Mode::Forward);
    }

    /// Connections attempted while cut or vanished.
    pub fn refused(&self) -> usize {
        self.refused.load(Ordering::Relaxed)
    }
}

impl Drop for CutRelay {
    fn drop(&mut self) {
        self.task.abort();
        // Relayed connections end with the relay.
        self.mode.send_replace(Mode::Cut);
    }
}

/// One connection: held while the server is gone, then forwarded until the
/// relay cuts it or the server vanishes.
async fn relay(mut inbound: TcpStream, target: SocketAddr, mut mode: watch::Receiver<Mode>) {
    if mode.wait_for(|m| *m != Mode::Vanished).await.is_err() || *mode.borrow() == Mode::Cut {
        return;
    }
    let Ok(mut outbound) = TcpStream::connect(target).await else {
        return;
    };
    let ended = tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => return,
        m = mode.wait_for(|m| *m != Mode::Forward) => m.map(|m| *m).unwrap_or(Mode::Cut),
    };
    // The server's side ends here; a cut ends the client's side too.
    drop(outbound);
    if ended == Mode::Cut {
        return;
    }
    // Vanished: the client's side stays open and silent. Once the relay is
    // restored, the first thing the client sends gets it closed.
    if mode.wait_for(|m| *m != Mode::Vanished).await.is_err() || *mode.borrow() == Mode::Cut {
        return;
    }
    let mut buf = [0u8; 1];
    tokio::select! {
        _ = inbound.read(&mut buf) => {}
        _ = mode.wait_for(|m| *m == Mode::Cut) => {}
    }
}
