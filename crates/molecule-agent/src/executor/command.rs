//! The `command` executor: runs a configured program per message with the
//! message text on stdin; the reply is its stdout. A non-zero exit fails the
//! task with its stderr; a run past the timeout is killed and fails the task.
//!
//! The program is started directly (no shell), with the agent's environment
//! and working directory, plus `A2A_TASK_ID`, `A2A_CONTEXT_ID` and
//! `A2A_HISTORY` (the conversation before this message as a JSON array of
//! `{role, text}`, the most recent entries that fit in 64 KiB). Output is
//! read whole, up to a cap, and replied in one chunk.
//!
//! Exit status 10 means "I need to ask first": stdout is the question, the
//! task goes `input-required`, and the caller's answer runs the program
//! again with the question and answer in `A2A_HISTORY`.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;
use tokio::sync::mpsc;

use super::{ExecError, Prompt, Reply, emit, truncate};
use crate::config::CommandConfig;

/// Most stdout kept as the reply; the rest is read and dropped so the
/// program is never blocked on a full pipe.
const MAX_STDOUT: usize = 8 << 20;
/// Most stderr kept for the error message.
const MAX_STDERR: usize = 64 << 10;
/// Characters of stderr put in a failed task's message.
const ERROR_CHARS: usize = 2000;
/// The exit status by which a program asks the caller a question.
pub const ASK_EXIT_STATUS: i32 = 10;
/// Most bytes of `A2A_HISTORY` (an environment string is capped by the
/// kernel at 128 KiB).
const MAX_HISTORY_ENV: usize = 64 << 10;

#[derive(Debug, Clone)]
pub struct CommandExecutor {
    config: CommandConfig,
}

impl CommandExecutor {
    pub fn new(config: CommandConfig) -> CommandExecutor {
        CommandExecutor { config }
    }

    pub async fn run(
        &self,
        prompt: Prompt<'_>,
        chunks: &mpsc::Sender<String>,
    ) -> Result<Reply, ExecError> {
        let input = prompt.input;
        let program = &self.config.program;
        let mut child = Command::new(program)
            .args(&self.config.args)
            .env("A2A_TASK_ID", prompt.task_id)
            .env("A2A_CONTEXT_ID", prompt.context_id)
            .env("A2A_HISTORY", history_env(prompt.history))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Dropping the execution (cancel, timeout, shutdown) kills the child.
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| ExecError(format!("cannot start {program}: {e}")))?;
        let (Some(mut stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(ExecError(format!("{program}: pipes unavailable")));
        };

        let write = async move {
            // A program that exits without reading its input closes the pipe:
            // that is its choice, not an error.
            let _ = stdin.write_all(input.as_bytes()).await;
            drop(stdin);
        };
        let run = async {
            let ((), out, err, status) = tokio::join!(
                write,
                read_capped(stdout, MAX_STDOUT),
                read_capped(stderr, MAX_STDERR),
                child.wait()
            );
            (out, err, status)
        };
        let (stdout, stderr, status) = tokio::time::timeout(self.config.timeout, run)
            .await
            .map_err(|_| {
                ExecError(format!(
                    "{program} timed out after {}",
                    describe(self.config.timeout)
                ))
            })?;
        let status = status.map_err(|e| ExecError(format!("waiting for {program}: {e}")))?;
        if status.code() == Some(ASK_EXIT_STATUS) {
            return Ok(Reply::Ask(
                String::from_utf8_lossy(&stdout).trim().to_owned(),
            ));
        }
        if !status.success() {
            let stderr = String::from_utf8_lossy(&stderr);
            let detail = if stderr.trim().is_empty() {
                String::new()
            } else {
                format!(": {}", truncate(&stderr, ERROR_CHARS))
            };
            return Err(ExecError(format!("{program} failed ({status}){detail}")));
        }
        emit(chunks, String::from_utf8_lossy(&stdout).into_owned()).await;
        Ok(Reply::Done)
    }
}

/// `A2A_HISTORY`: the latest entries of `history` whose JSON fits the cap.
fn history_env(history: &[(String, String)]) -> String {
    let mut kept = Vec::new();
    let mut size = 2;
    for (role, text) in history.iter().rev() {
        let entry = serde_json::json!({ "role": role, "text": text });
        size += entry.to_string().len() + 1;
        if size > MAX_HISTORY_ENV {
            break;
        }
        kept.push(entry);
    }
    kept.reverse();
    serde_json::Value::Array(kept).to_string()
}

/// Reads `reader` to its end, keeping at most `cap` bytes.
async fn read_capped(mut reader: impl AsyncRead + Unpin, cap: usize) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut buffer = [0u8; 8192];
    loop {
        match reader.read(&mut buffer).await {
            Ok(0) | Err(_) => return kept,
            Ok(n) => {
                let room = cap.saturating_sub(kept.len());
                kept.extend_from_slice(&buffer[..n.min(room)]);
            }
        }
    }
}

fn describe(duration: Duration) -> String {
    format!("{:.1}s", duration.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::super::{Executor, run_prompt, run_to_string};
    use super::*;
    use std::time::Instant;

    fn sh(script: &str, timeout: Duration) -> Executor {
        Executor::Command(CommandExecutor::new(CommandConfig {
            program: "sh".into(),
            args: vec!["-c".into(), script.into()],
            timeout,
        }))
    }

    const MINUTE: Duration = Duration::from_secs(60);

    #[tokio::test]
    async fn stdin_in_stdout_out() {
        let (result, chunks) = run_to_string(&sh("tr a-z A-Z", MINUTE), "hello\nworld").await;
        assert_eq!(result, Ok(Reply::Done));
        assert_eq!(chunks.concat(), "HELLO\nWORLD");
    }

    #[tokio::test]
    async fn arguments_are_passed_without_a_shell() {
        let executor = Executor::Command(CommandExecutor::new(CommandConfig {
            program: "printf".into(),
            args: vec!["%s|%s".into(), "a b".into(), "$HOME".into()],
            timeout: MINUTE,
        }));
        let (result, chunks) = run_to_string(&executor, "ignored").await;
        assert_eq!(result, Ok(Reply::Done));
        assert_eq!(chunks.concat(), "a b|$HOME");
    }

    #[tokio::test]
    async fn non_zero_exit_fails_with_stderr() {
        let script = "cat >/dev/null; echo 'bad things' >&2; exit 3";
        let (result, chunks) = run_to_string(&sh(script, MINUTE), "x").await;
        let error = result.expect_err("exit 3 fails").0;
        assert!(error.contains("exit status: 3"), "{error}");
        assert!(error.contains("bad things"), "{error}");
        assert!(chunks.is_empty());
    }

    #[tokio::test]
    async fn a_program_that_ignores_stdin_still_works() {
        let big = "y".repeat(1 << 20);
        let (result, chunks) = run_to_string(&sh("echo done", MINUTE), &big).await;
        assert_eq!(result, Ok(Reply::Done));
        assert_eq!(chunks.concat(), "done\n");
    }

    #[tokio::test]
    async fn timeout_kills_the_program() {
        let started = Instant::now();
        let (result, _) = run_to_string(&sh("sleep 30", Duration::from_millis(200)), "").await;
        let error = result.expect_err("timed out").0;
        assert!(error.contains("timed out after 0.2s"), "{error}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[tokio::test]
    async fn exit_status_10_asks_and_the_answer_comes_with_the_history() {
        let script = r#"case "$A2A_HISTORY" in *name*) echo "hello $(cat)";; *) echo 'your name?'; exit 10;; esac"#;
        let (result, chunks) = run_to_string(&sh(script, MINUTE), "hi").await;
        assert_eq!(result, Ok(Reply::Ask("your name?".into())));
        assert!(chunks.is_empty());
        let history = [
            ("user".to_owned(), "hi".to_owned()),
            ("agent".to_owned(), "your name?".to_owned()),
        ];
        let prompt = Prompt {
            input: "Bob",
            history: &history,
            task_id: "t-1",
            context_id: "c-1",
        };
        let (result, chunks) = run_prompt(&sh(script, MINUTE), prompt).await;
        assert_eq!(result, Ok(Reply::Done));
        assert_eq!(chunks.concat(), "hello Bob\n");
        let (_, chunks) =
            run_prompt(&sh("echo \"$A2A_TASK_ID $A2A_CONTEXT_ID\"", MINUTE), prompt).await;
        assert_eq!(chunks.concat(), "t-1 c-1\n");
    }

    #[test]
    fn the_history_variable_keeps_the_latest_entries_that_fit() {
        let big = "x".repeat(40 << 10);
        let history = [
            ("user".to_owned(), big.clone()),
            ("agent".to_owned(), big),
            ("user".to_owned(), "last".to_owned()),
        ];
        let value: serde_json::Value = serde_json::from_str(&history_env(&history)).expect("JSON");
        let entries = value.as_array().expect("an array");
        assert_eq!(entries.len(), 2, "the oldest does not fit");
        assert_eq!(entries[1]["text"], "last");
        assert!(history_env(&history).len() <= MAX_HISTORY_ENV);
        assert_eq!(history_env(&[]), "[]");
    }

    #[tokio::test]
    async fn a_missing_program_fails_the_task() {
        let executor = Executor::Command(CommandExecutor::new(CommandConfig {
            program: "/nonexistent/molecule-agent-test".into(),
            args: vec![],
            timeout: MINUTE,
        }));
        let (result, _) = run_to_string(&executor, "").await;
        assert!(result.expect_err("no such file").0.contains("cannot start"));
    }
}
