//! Interactive shells in a workspace (`GET /workspaces/:id/terminal`): a
//! TTY whose output is a byte stream and whose input is a writer, plus a
//! control to resize and end it.
//!
//! Both backends start the same small script under a TTY: it prints a
//! marker line with its PID (and its TTY device), then `exec`s the best
//! shell the image has (`/bin/bash`, else `/bin/sh`). The marker line is read
//! here and never reaches the user; the PID is what [`TerminalControl::close`]
//! ends, with everything started in its session, so closing leaves nothing
//! behind.

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use std::pin::Pin;
use std::time::Duration;
use tokio::io::AsyncWrite;

use crate::{ProvisionError, Result};

/// What the shell writes (stdout and stderr, merged by the TTY).
pub type TerminalOutput = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;
/// What is typed into the shell.
pub type TerminalInput = Pin<Box<dyn AsyncWrite + Send>>;

/// A TTY size in character cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TerminalSize {
    pub cols: u16,
    pub rows: u16,
}

impl Default for TerminalSize {
    fn default() -> TerminalSize {
        TerminalSize { cols: 80, rows: 24 }
    }
}

/// An open shell.
pub struct Terminal {
    pub output: TerminalOutput,
    pub input: TerminalInput,
    pub control: Box<dyn TerminalControl>,
}

/// Resizing and ending a shell.
#[async_trait]
pub trait TerminalControl: Send + Sync {
    async fn resize(&self, size: TerminalSize) -> Result<()>;
    /// Sends `signal` (`HUP`, `KILL`) to every process of the shell's
    /// session.
    async fn signal_session(&self, signal: &str) -> Result<()>;
    /// True while the shell runs.
    async fn running(&self) -> Result<bool>;
    /// Ends the shell and every process of its session (see [`end_session`]).
    async fn close(&self) -> Result<()> {
        end_session(self).await
    }
}

/// How long a hung-up session may take to end before it is killed.
const HANGUP_GRACE: Duration = Duration::from_secs(2);

/// Hang up the session, give it [`HANGUP_GRACE`] to go, kill what is left.
pub async fn end_session<C: TerminalControl + ?Sized>(control: &C) -> Result<()> {
    control.signal_session("HUP").await?;
    let deadline = tokio::time::Instant::now() + HANGUP_GRACE;
    while tokio::time::Instant::now() < deadline && control.running().await? {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    control.signal_session("KILL").await
}

/// The first line the start script prints.
const MARKER: &str = "__molecule_terminal__";

/// How long the shell may take to print its marker.
const START_DEADLINE: Duration = Duration::from_secs(15);

/// The script run under the TTY (by `/bin/sh -c`).
pub(crate) fn start_script() -> String {
    format!(
        "echo {MARKER} $$ $(tty 2>/dev/null); \
         if [ -x /bin/bash ]; then exec /bin/bash -i; else exec /bin/sh -i; fi"
    )
}

/// A `/bin/sh` script sending `signal` to every process of session `sid`
/// (the shell's PID: it leads the session that owns the TTY), read from
/// `/proc` so it needs no `pkill` (busybox images lack one). The command
/// name in `stat` may hold spaces, so fields are counted after its `)`.
pub(crate) fn signal_session_script(sid: u32, signal: &str) -> String {
    format!(
        "for f in /proc/[0-9]*/stat; do \
           s=$(cat \"$f\" 2>/dev/null) || continue; \
           set -- ${{s##*) }}; \
           if [ \"$4\" = {sid} ]; then p=${{f#/proc/}}; kill -{signal} \"${{p%/stat}}\" 2>/dev/null; fi; \
         done; true"
    )
}

/// What the marker line said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Started {
    pub pid: u32,
    /// The TTY device (`/dev/pts/N`), when `tty` could name it.
    pub tty: Option<String>,
}

/// Reads `output` up to the marker line; answers what it said and the
/// output with everything after the line still in it.
pub(crate) async fn read_marker(mut output: TerminalOutput) -> Result<(Started, TerminalOutput)> {
    let mut seen = Vec::new();
    let read = async {
        loop {
            if let Some(found) = parse_marker(&seen) {
                return found;
            }
            match output.next().await {
                Some(Ok(chunk)) => seen.extend_from_slice(&chunk),
                Some(Err(e)) => return Err(ProvisionError::Failed(format!("terminal: {e}"))),
                None => {
                    let text = String::from_utf8_lossy(&seen).trim().to_string();
                    return Err(ProvisionError::Failed(if text.is_empty() {
                        "terminal: the shell ended at once (does the image have /bin/sh?)".into()
                    } else {
                        format!("terminal: the shell could not start: {text}")
                    }));
                }
            }
        }
    };
    let (started, rest) = tokio::time::timeout(START_DEADLINE, read)
        .await
        .map_err(|_| ProvisionError::Failed("terminal: the shell did not start".into()))??;
    let rest = Bytes::copy_from_slice(&seen[rest..]);
    let head = futures_util::stream::iter((!rest.is_empty()).then_some(Ok(rest)));
    Ok((started, Box::pin(head.chain(output))))
}

/// The marker and the offset just past its line, once a whole line holding
/// it has arrived.
fn parse_marker(seen: &[u8]) -> Option<Result<(Started, usize)>> {
    let at = seen
        .windows(MARKER.len())
        .position(|w| w == MARKER.as_bytes())?;
    let end = at + seen[at..].iter().position(|b| *b == b'\n')?;
    let line = String::from_utf8_lossy(&seen[at + MARKER.len()..end]);
    let mut words = line.split_whitespace();
    let Some(pid) = words.next().and_then(|p| p.parse().ok()) else {
        return Some(Err(ProvisionError::Failed(format!(
            "terminal: unreadable start line {line:?}"
        ))));
    };
    let tty = words
        .next()
        .filter(|t| t.starts_with('/'))
        .map(str::to_owned);
    Some(Ok((Started { pid, tty }, end + 1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(parts: &[&str]) -> TerminalOutput {
        let items: Vec<std::io::Result<Bytes>> = parts
            .iter()
            .map(|p| Ok(Bytes::copy_from_slice(p.as_bytes())))
            .collect();
        Box::pin(futures_util::stream::iter(items))
    }

    async fn rest(mut output: TerminalOutput) -> String {
        let mut text = String::new();
        while let Some(Ok(chunk)) = output.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
        text
    }

    #[tokio::test]
    async fn the_marker_line_is_read_and_never_passed_on() {
        let (started, output) = read_marker(chunks(&[
            "__molecule_ter",
            "minal__ 42 /dev/pts/3\r\n$ ",
            "ls\r\n",
        ]))
        .await
        .unwrap();
        assert_eq!(
            started,
            Started {
                pid: 42,
                tty: Some("/dev/pts/3".into())
            }
        );
        assert_eq!(rest(output).await, "$ ls\r\n");

        let (started, _) = read_marker(chunks(&["__molecule_terminal__ 7 not a tty\n"]))
            .await
            .unwrap();
        assert_eq!(started, Started { pid: 7, tty: None });
    }

    #[tokio::test]
    async fn a_shell_that_never_starts_is_an_error_that_says_why() {
        let error = read_marker(chunks(&["exec: /bin/sh: not found\r\n"]))
            .await
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("not found"), "{error}");
        assert!(
            read_marker(chunks(&["__molecule_terminal__ x\n"]))
                .await
                .is_err()
        );
    }
}
