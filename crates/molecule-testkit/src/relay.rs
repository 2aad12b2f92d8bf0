//! A TCP relay that can be cut, in front of a real server (a replica's
//! PostgreSQL): it forwards every connection until [`CutRelay::cut`], which
//! closes the relayed connections and refuses new ones (accepted, then
//! closed at once) until [`CutRelay::restore`]. The process behind it sees
//! what a network partition that resets connections looks like; the server
//! and everyone else connected to it directly are untouched.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub struct CutRelay {
    addr: SocketAddr,
    cut: watch::Sender<bool>,
    refused: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl CutRelay {
    /// Listen on a free loopback port and forward to `target`.
    pub async fn start(target: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (cut, _) = watch::channel(false);
        let refused = Arc::new(AtomicUsize::new(0));
        let (state, count) = (cut.clone(), refused.clone());
        let task = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let mut cut = state.subscribe();
                if *cut.borrow_and_update() {
                    count.fetch_add(1, Ordering::Relaxed);
                    drop(inbound);
                    continue;
                }
                tokio::spawn(async move {
                    let (mut inbound, Ok(mut outbound)) =
                        (inbound, TcpStream::connect(target).await)
                    else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.wait_for(|c| *c) => {}
                    }
                });
            }
        });
        Ok(Self {
            addr,
            cut,
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
        self.cut.send_replace(true);
    }

    /// Forward new connections again.
    pub fn restore(&self) {
        self.cut.send_replace(false);
    }

    /// Connections refused while cut.
    pub fn refused(&self) -> usize {
        self.refused.load(Ordering::Relaxed)
    }
}

impl Drop for CutRelay {
    fn drop(&mut self) {
        self.task.abort();
        // Relayed connections end with the relay.
        self.cut.send_replace(true);
    }
}
