//! Bounded in-memory capture of a child process's stdout and stderr, so
//! `logs` works without files. Old lines fall off the front; an overlong
//! line is cut. It keeps no history on disk and survives no restart.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

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
        }
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

/// A ring shared between the pumps and `logs`.
#[derive(Debug, Clone, Default)]
pub(crate) struct SharedLog(Arc<Mutex<LogRing>>);

impl SharedLog {
    /// A poisoned lock only means a pump panicked mid-push; the ring is
    /// still usable.
    pub(crate) fn lock(&self) -> MutexGuard<'_, LogRing> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Copy `reader` into the ring line by line until EOF. The task ends
    /// with the process's pipe, so it needs no shutdown of its own.
    pub(crate) fn pump(&self, reader: impl AsyncRead + Unpin + Send + 'static) {
        let log = self.clone();
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
                    }
                }
            }
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
