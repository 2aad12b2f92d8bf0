//! Executors: what turns a message's text into a reply. One is chosen at
//! start (`MOLECULE_EXECUTOR` or `executor:` in config.yaml) and shared by all
//! tasks.
//!
//! An executor is given a [`Prompt`]: the latest message's text and the
//! conversation before it (earlier turns of the task and earlier tasks of its
//! context). It writes its reply as text chunks into a channel, so streaming
//! callers see it as it is produced; the concatenation of the chunks is the
//! reply. Instead of replying it may ask the caller a question
//! ([`Reply::Ask`]): the task goes `input-required` and the caller's next
//! message to it continues the conversation. It knows nothing about tasks, JSON-RPC or cancellation: a canceled
//! execution is simply dropped (the command executor's child is killed on
//! drop).

mod command;
mod echo;
mod openai;

pub use command::CommandExecutor;
pub use echo::EchoExecutor;
pub use openai::OpenAiExecutor;

use tokio::sync::mpsc;

use crate::config::ExecutorConfig;

/// Why an execution failed; the text becomes the failed task's status
/// message and the heartbeat's `sample_error`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct ExecError(pub String);

/// What an execution is asked.
#[derive(Debug, Clone, Copy)]
pub struct Prompt<'a> {
    /// The text of the latest message.
    pub input: &'a str,
    /// `(role, text)` of the conversation before it, oldest first; role is
    /// `user` or `agent`.
    pub history: &'a [(String, String)],
    pub task_id: &'a str,
    pub context_id: &'a str,
}

impl<'a> Prompt<'a> {
    /// A prompt with no conversation before it.
    pub fn single(input: &'a str) -> Prompt<'a> {
        Prompt {
            input,
            history: &[],
            task_id: "",
            context_id: "",
        }
    }
}

/// How an executor's turn ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// The chunks sent are the reply.
    Done,
    /// The executor needs the caller's answer to this question first.
    Ask(String),
}

/// The configured executor.
#[derive(Debug)]
pub enum Executor {
    Echo(EchoExecutor),
    Command(CommandExecutor),
    OpenAi(OpenAiExecutor),
}

impl Executor {
    pub fn from_config(config: &ExecutorConfig) -> Result<Executor, crate::AgentError> {
        Ok(match config {
            ExecutorConfig::Echo { delay } => Executor::Echo(EchoExecutor::new(*delay)),
            ExecutorConfig::Command(config) => {
                Executor::Command(CommandExecutor::new(config.clone()))
            }
            ExecutorConfig::OpenAi(config) => {
                Executor::OpenAi(OpenAiExecutor::new(config.clone())?)
            }
        })
    }

    /// The executor's name as configured (`echo`, `command`, `openai`).
    pub fn kind(&self) -> &'static str {
        match self {
            Executor::Echo(_) => "echo",
            Executor::Command(_) => "command",
            Executor::OpenAi(_) => "openai",
        }
    }

    /// Produces the reply to `prompt` into `chunks`, or a question.
    pub async fn run(
        &self,
        prompt: Prompt<'_>,
        chunks: &mpsc::Sender<String>,
    ) -> Result<Reply, ExecError> {
        match self {
            Executor::Echo(executor) => executor.run(prompt, chunks).await,
            Executor::Command(executor) => executor.run(prompt, chunks).await,
            Executor::OpenAi(executor) => executor.run(prompt, chunks).await,
        }
    }
}

/// Sends one chunk; a closed channel means nobody listens any more, which is
/// not the executor's failure.
async fn emit(chunks: &mpsc::Sender<String>, text: String) {
    let _ = chunks.send(text).await;
}

/// Cuts `text` to at most `max` characters, marking the cut.
fn truncate(text: &str, max: usize) -> String {
    let text = text.trim();
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let cut: String = text.chars().take(max).collect();
        format!("{cut}…")
    }
}

#[cfg(test)]
pub(crate) async fn run_to_string(
    executor: &Executor,
    input: &str,
) -> (Result<Reply, ExecError>, Vec<String>) {
    run_prompt(executor, Prompt::single(input)).await
}

#[cfg(test)]
pub(crate) async fn run_prompt(
    executor: &Executor,
    prompt: Prompt<'_>,
) -> (Result<Reply, ExecError>, Vec<String>) {
    let (tx, mut rx) = mpsc::channel(1024);
    let result = executor.run(prompt, &tx).await;
    drop(tx);
    let mut chunks = Vec::new();
    while let Some(chunk) = rx.recv().await {
        chunks.push(chunk);
    }
    (result, chunks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_marks_cuts() {
        assert_eq!(truncate("  short  ", 10), "short");
        assert_eq!(truncate("abcdef", 3), "abc…");
        assert_eq!(truncate("ééé", 2), "éé…");
    }
}
