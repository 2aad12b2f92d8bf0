//! Turning what Docker said into an [`Observation`]. This is the truth table
//! the restart governor relies on: only a definite "no such container" or a
//! container that is not running means gone; every other failure (timeout,
//! EOF, refused connection, a 5xx) is `Unknown`. The mapping is a pure
//! function over [`InspectFacts`] so it is table-tested without a daemon; it
//! does not call Docker itself.

use crate::Observation;
use bollard::models::ContainerSummaryStateEnum;
use std::error::Error as _;
use std::time::Duration;

/// A failed Docker call: the daemon answered with an error status, the
/// transport failed, or our own per-call deadline passed.
#[derive(Debug)]
pub(crate) enum CallError {
    TimedOut { call: &'static str, after: Duration },
    Docker(bollard::errors::Error),
}

impl CallError {
    /// HTTP status when the daemon itself answered with an error.
    pub(crate) fn status(&self) -> Option<u16> {
        match self {
            Self::Docker(bollard::errors::Error::DockerResponseServerError {
                status_code, ..
            }) => Some(*status_code),
            _ => None,
        }
    }

    pub(crate) fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    /// The error with its whole source chain: hyper's top-level messages
    /// ("client error (Connect)") say little without their causes.
    pub(crate) fn text(&self) -> String {
        match self {
            Self::TimedOut { call, after } => format!("docker {call} timed out after {after:?}"),
            Self::Docker(e) => {
                let mut text = e.to_string();
                let mut source = e.source();
                while let Some(cause) = source {
                    let cause_text = cause.to_string();
                    if !text.contains(&cause_text) {
                        text.push_str(": ");
                        text.push_str(&cause_text);
                    }
                    source = cause.source();
                }
                text
            }
        }
    }
}

impl From<CallError> for crate::ProvisionError {
    /// 4xx answers are definite refusals (`Failed`); anything else means the
    /// daemon could not be asked properly (`Unavailable`).
    fn from(e: CallError) -> Self {
        match e.status() {
            Some(404) => Self::NotFound,
            Some(s) if (400..500).contains(&s) => Self::Failed(e.text()),
            _ => Self::Unavailable(e.text()),
        }
    }
}

/// What one container inspect produced, stripped of Docker types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum InspectFacts {
    /// The container exists; its `State` fields.
    Found {
        running: bool,
        paused: bool,
        exit_code: Option<i64>,
    },
    /// The container exists but the answer carried no `State`.
    FoundWithoutState,
    /// The daemon answered with an error status.
    ApiError { status: u16, message: String },
    /// The call failed before an answer: transport error or our deadline.
    NoAnswer(String),
}

impl InspectFacts {
    pub(crate) fn from_error(e: &CallError) -> Self {
        match e {
            CallError::Docker(bollard::errors::Error::DockerResponseServerError {
                status_code,
                message,
            }) => Self::ApiError {
                status: *status_code,
                message: message.clone(),
            },
            other => Self::NoAnswer(other.text()),
        }
    }
}

/// The truth table. A paused container is not serving, so it is reported as
/// `Exited` like every other non-running state.
pub(crate) fn observe(facts: InspectFacts) -> Observation {
    match facts {
        InspectFacts::Found {
            running: true,
            paused: false,
            ..
        } => Observation::Running,
        InspectFacts::Found { exit_code, .. } => Observation::Exited { code: exit_code },
        InspectFacts::FoundWithoutState => {
            Observation::Unknown("docker inspect returned no container state".into())
        }
        InspectFacts::ApiError { status: 404, .. } => Observation::NotFound,
        InspectFacts::ApiError { status, message } => {
            Observation::Unknown(format!("docker answered {status}: {message}"))
        }
        InspectFacts::NoAnswer(text) => Observation::Unknown(text),
    }
}

/// The observation of a container as the list API reports it: a state
/// word and a status text. Restarting counts as running, as in inspect.
pub(crate) fn observe_listed(
    state: Option<ContainerSummaryStateEnum>,
    status: Option<&str>,
) -> Observation {
    use ContainerSummaryStateEnum as S;
    match state {
        Some(S::RUNNING | S::RESTARTING) => Observation::Running,
        Some(S::EMPTY) | None => {
            Observation::Unknown("docker listed the container without a state".into())
        }
        Some(_) => Observation::Exited {
            code: status.and_then(exit_code_from_status),
        },
    }
}

/// Exit code from a container list `Status` text such as
/// `Exited (3) 5 seconds ago`; the list API carries no numeric field.
pub(crate) fn exit_code_from_status(status: &str) -> Option<i64> {
    let rest = status.strip_prefix("Exited (")?;
    let end = rest.find(')')?;
    rest[..end].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::errors::Error as BollardError;
    use std::io;

    fn api(status: u16, message: &str) -> InspectFacts {
        InspectFacts::ApiError {
            status,
            message: message.into(),
        }
    }

    #[test]
    fn inspect_truth_table() {
        let found = |running, paused, exit_code| InspectFacts::Found {
            running,
            paused,
            exit_code,
        };
        let unknown = |s: &str| Observation::Unknown(s.into());
        let cases = [
            (found(true, false, Some(0)), Observation::Running),
            (
                found(false, false, Some(3)),
                Observation::Exited { code: Some(3) },
            ),
            (
                found(false, false, Some(137)),
                Observation::Exited { code: Some(137) },
            ),
            (
                found(false, false, None),
                Observation::Exited { code: None },
            ),
            (
                found(true, true, Some(0)),
                Observation::Exited { code: Some(0) },
            ),
            (api(404, "No such container: ws-x"), Observation::NotFound),
            (api(500, "boom"), unknown("docker answered 500: boom")),
            (api(503, ""), unknown("docker answered 503: ")),
            (
                api(409, "conflict"),
                unknown("docker answered 409: conflict"),
            ),
            (
                InspectFacts::NoAnswer("i/o timeout".into()),
                unknown("i/o timeout"),
            ),
            (
                InspectFacts::FoundWithoutState,
                unknown("docker inspect returned no container state"),
            ),
        ];
        for (facts, want) in cases {
            assert_eq!(observe(facts.clone()), want, "{facts:?}");
        }
    }

    #[test]
    fn transient_failures_are_unknown_and_only_404_is_not_found() {
        let errors = [
            CallError::TimedOut {
                call: "inspect",
                after: Duration::from_secs(10),
            },
            CallError::Docker(BollardError::RequestTimeoutError),
            CallError::Docker(BollardError::IOError {
                err: io::Error::new(io::ErrorKind::UnexpectedEof, "unexpected EOF"),
            }),
            CallError::Docker(BollardError::IOError {
                err: io::Error::new(io::ErrorKind::ConnectionRefused, "connection refused"),
            }),
            CallError::Docker(BollardError::DockerResponseServerError {
                status_code: 500,
                message: "context deadline exceeded".into(),
            }),
            CallError::Docker(BollardError::DockerResponseServerError {
                status_code: 502,
                message: String::new(),
            }),
        ];
        for e in &errors {
            let obs = observe(InspectFacts::from_error(e));
            assert!(matches!(obs, Observation::Unknown(_)), "{e:?} gave {obs:?}");
            assert!(!obs.is_gone());
        }
        let not_found = CallError::Docker(BollardError::DockerResponseServerError {
            status_code: 404,
            message: "No such container: ws-123".into(),
        });
        assert_eq!(
            observe(InspectFacts::from_error(&not_found)),
            Observation::NotFound
        );
    }

    #[test]
    fn error_text_names_the_cause() {
        let timed_out = CallError::TimedOut {
            call: "inspect_container",
            after: Duration::from_secs(10),
        };
        assert_eq!(
            timed_out.text(),
            "docker inspect_container timed out after 10s"
        );
        let eof = CallError::Docker(BollardError::IOError {
            err: io::Error::new(io::ErrorKind::UnexpectedEof, "unexpected EOF"),
        });
        assert!(eof.text().contains("unexpected EOF"), "{}", eof.text());
    }

    #[test]
    fn call_errors_map_to_provision_errors() {
        use crate::ProvisionError as P;
        let server = |status_code| {
            CallError::Docker(BollardError::DockerResponseServerError {
                status_code,
                message: "m".into(),
            })
        };
        assert!(matches!(P::from(server(404)), P::NotFound));
        assert!(matches!(P::from(server(409)), P::Failed(_)));
        assert!(matches!(P::from(server(500)), P::Unavailable(_)));
        assert!(matches!(
            P::from(CallError::Docker(BollardError::RequestTimeoutError)),
            P::Unavailable(_)
        ));
    }

    #[test]
    fn listed_states_map_like_inspect() {
        use ContainerSummaryStateEnum as S;
        let cases = [
            (Some(S::RUNNING), Some("Up 2 minutes"), Observation::Running),
            (Some(S::RESTARTING), None, Observation::Running),
            (
                Some(S::EXITED),
                Some("Exited (3) 1 second ago"),
                Observation::Exited { code: Some(3) },
            ),
            (
                Some(S::CREATED),
                Some("Created"),
                Observation::Exited { code: None },
            ),
            (
                Some(S::PAUSED),
                Some("Up 1 hour (Paused)"),
                Observation::Exited { code: None },
            ),
            (
                Some(S::DEAD),
                Some("Dead"),
                Observation::Exited { code: None },
            ),
        ];
        for (state, status, want) in cases {
            assert_eq!(observe_listed(state, status), want, "{state:?} {status:?}");
        }
        assert!(matches!(
            observe_listed(None, None),
            Observation::Unknown(_)
        ));
    }

    #[test]
    fn exit_codes_are_read_from_list_status_text() {
        for (status, want) in [
            ("Exited (3) 5 seconds ago", Some(3)),
            ("Exited (137) About a minute ago", Some(137)),
            ("Exited (0) 2 hours ago", Some(0)),
            ("Up 3 minutes", None),
            ("Created", None),
            ("Exited (x)", None),
            ("", None),
        ] {
            assert_eq!(exit_code_from_status(status), want, "{status}");
        }
    }
}
