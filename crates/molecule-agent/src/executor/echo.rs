//! The `echo` executor: replies `echo: <input>`, deterministically, so the
//! platform's tests can assert on replies. With a delay it emits the reply
//! word by word, sleeping before each word, so streaming is observable.
//! A message starting with `ask:` is answered with the rest as a question
//! (the task goes `input-required`), so multi-turn tasks can be exercised.

use std::time::Duration;

use tokio::sync::mpsc;

use super::{ExecError, Prompt, Reply, emit};

#[derive(Debug, Clone)]
pub struct EchoExecutor {
    delay: Duration,
}

impl EchoExecutor {
    pub fn new(delay: Duration) -> EchoExecutor {
        EchoExecutor { delay }
    }

    pub async fn run(
        &self,
        prompt: Prompt<'_>,
        chunks: &mpsc::Sender<String>,
    ) -> Result<Reply, ExecError> {
        if let Some(question) = prompt.input.strip_prefix("ask:") {
            return Ok(Reply::Ask(question.trim().to_owned()));
        }
        let reply = format!("echo: {}", prompt.input);
        if self.delay.is_zero() {
            emit(chunks, reply).await;
            return Ok(Reply::Done);
        }
        for word in reply.split_inclusive(char::is_whitespace) {
            tokio::time::sleep(self.delay).await;
            emit(chunks, word.to_owned()).await;
        }
        Ok(Reply::Done)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Executor, run_to_string};
    use super::*;
    use std::time::Instant;

    #[tokio::test]
    async fn echo_replies_in_one_chunk_without_delay() {
        let executor = Executor::Echo(EchoExecutor::new(Duration::ZERO));
        let (result, chunks) = run_to_string(&executor, "hello there").await;
        assert_eq!(result, Ok(Reply::Done));
        assert_eq!(chunks, ["echo: hello there"]);
    }

    #[tokio::test]
    async fn echo_asks_what_an_ask_message_says() {
        let executor = Executor::Echo(EchoExecutor::new(Duration::ZERO));
        let (result, chunks) = run_to_string(&executor, "ask: your name? ").await;
        assert_eq!(result, Ok(Reply::Ask("your name?".into())));
        assert!(chunks.is_empty(), "a question is not a reply");
    }

    #[tokio::test]
    async fn echo_streams_word_by_word_with_a_delay() {
        let executor = Executor::Echo(EchoExecutor::new(Duration::from_millis(20)));
        let started = Instant::now();
        let (result, chunks) = run_to_string(&executor, "a  b\nc").await;
        assert_eq!(result, Ok(Reply::Done));
        assert_eq!(
            chunks.concat(),
            "echo: a  b\nc",
            "chunks rebuild the reply exactly"
        );
        assert_eq!(chunks.len(), 5, "{chunks:?}");
        assert!(
            started.elapsed() >= Duration::from_millis(100),
            "one delay per word"
        );
    }
}
