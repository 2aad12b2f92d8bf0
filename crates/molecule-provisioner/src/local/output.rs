//! Bounded in-memory capture of a child process's stdout and stderr, so
//! `logs` works without files. Old lines fall off the front; an overlong
//! line is cut. It keeps no history on disk and survives no restart.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::Notify;

const MAX_LINES: usize = 2000;
const MAX_BYTES: usize = 1 << 20;
const MAX_LINE_BYTES: usize = 16 * 1024;

/// The last lines a process printed, bounded by count and bytes.
#[derive(Debug)]
pub(crate) struct LogRing {
    lines: VecDeque<String>,
    bytes: usize,
    max_lines: usize,
    max_bytes: usize,
    /// Lines ever pushed: a follower's cursor.
    pushed: u64,
    /// Pumps still reading (the output has ended at 0).
    pumps: usize,
}

impl Default for LogRing {
    fn default() -> Self {
        Self::new(MAX_LINES, MAX_BYTES)
    }
}

impl LogRing {
    pub(crate) fn new(max_lines: usize, max_bytes: usize) -> Self {
        Self {
            lines: VecDeque::new(),
            bytes: 0,
            max_lines,
            max_bytes,
            pushed: 0,
            pumps: 0,
        }
    }

    /// The lines pushed after cursor `since` that are still kept, and the
    /// new cursor.
    pub(crate) fn since(&self, since: u64) -> (String, u64) {
        let new = (self.pushed - since.min(self.pushed)) as usize;
        (self.tail(new), self.pushed)
    }

    pub(crate) fn push(&mut self, mut line: String) {
        if line.len() > MAX_LINE_BYTES {
            let mut cut = MAX_LINE_BYTES;
            while !line.is_char_boundary(cut) {
                cut -= 1;
            }
            line.truncate(cut);
        }
        self.bytes += line.len();
        self.pushed += 1;
        self.lines.push_back(line);
        while self.lines.len() > self.max_lines || self.bytes > self.max_bytes {
            match self.lines.pop_front() {
                Some(old) => self.bytes -= old.len(),
                None => break,
            }
        }
    }

    /// The last `n` lines, newline-terminated.
    pub(crate) fn tail(&self, n: usize) -> String {
        let skip = self.lines.len().saturating_sub(n);
        self.lines
            .iter()
            .skip(skip)
            .fold(String::new(), |mut s, l| {
                s.push_str(l);
                s.push('\n');
                s
            })
    }
}

/// A ring shared between the pumps, `logs` and followers, who are woken
/// by each new line.
#[derive(Debug, Clone, Default)]
pub(crate) struct SharedLog(Arc<Mutex<LogRing>>, Arc<Notify>);

impl SharedLog {
    /// A poisoned lock only means a pump panicked mid-push; the ring is
    /// still usable.
    pub(crate) fn lock(&self) -> MutexGuard<'_, LogRing> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The last `tail` lines, then every new one, until the process's
    /// output ends or the receiver is dropped.
    pub(crate) fn follow(&self, tail: usize) -> tokio::sync::mpsc::Receiver<Vec<u8>> {
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let log = self.clone();
        tokio::spawn(async move {
            let (first, mut cursor) = {
                let ring = log.lock();
                (ring.tail(tail), ring.pushed)
            };
            if !first.is_empty() && tx.send(first.into_bytes()).await.is_err() {
                return;
            }
            loop {
                let woken = log.1.notified();
                let (text, next, ended) = {
                    let ring = log.lock();
                    let (text, next) = ring.since(cursor);
                    (text, next, ring.pumps == 0)
                };
                cursor = next;
                if !text.is_empty() && tx.send(text.into_bytes()).await.is_err() {
                    return;
                }
                if ended {
                    return;
                }
                tokio::select! {
                    () = woken => {}
                    () = tx.closed() => return,
                }
            }
        });
        rx
    }

    /// Copy `reader` into the ring line by line until EOF. The task ends
    /// with the process's pipe, so it needs no shutdown of its own.
    pub(crate) fn pump(&self, reader: impl AsyncRead + Unpin + Send + 'static) {
        let log = self.clone();
        log.lock().pumps += 1;
        tokio::spawn(async move {
            let mut reader = BufReader::new(reader);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match reader.read_until(b'\n', &mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let line = String::from_utf8_lossy(&buf);
                        let line = line.trim_end_matches(['\n', '\r']).to_string();
                        log.lock().push(line);
                        log.1.notify_waiters();
                    }
                }
            }
            log.lock().pumps -= 1;
            log.1.notify_waiters();
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_keeps_the_last_lines_within_bounds() {
        let mut ring = LogRing::new(3, 1000);
        for i in 0..5 {
            ring.push(format!("line {i}"));
        }
        assert_eq!(ring.tail(10), "line 2\nline 3\nline 4\n");
        assert_eq!(ring.tail(1), "line 4\n");
        assert_eq!(ring.tail(0), "");
        assert_eq!(ring.since(3), ("line 3\nline 4\n".to_string(), 5));
        assert_eq!(
            ring.since(0).0,
            "line 2\nline 3\nline 4\n",
            "only what is kept"
        );
        assert_eq!(ring.since(5), (String::new(), 5));

        let mut small = LogRing::new(100, 10);
        small.push("aaaaa".into());
        small.push("bbbbb".into());
        small.push("cc".into());
        assert_eq!(small.tail(10), "bbbbb\ncc\n");
    }

    #[test]
    fn overlong_lines_are_cut_on_a_char_boundary() {
        let mut ring = LogRing::default();
        ring.push("é".repeat(MAX_LINE_BYTES));
        let kept = ring.tail(1);
        assert!(kept.len() <= MAX_LINE_BYTES + 1);
        assert!(kept.starts_with('é'));
    }
}
