//! The two errors every service has, defined once: input that breaks a rule ([`Invalid`],
//! answered 400) and a message a consumer must see again ([`Retry`], left on its queue).

use crate::http::Problem;

/// Input that breaks one of the service's rules; the detail says which.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

impl From<Invalid> for Problem {
    fn from(invalid: Invalid) -> Self {
        Problem::bad_request(invalid.0)
    }
}

/// A message its consumer could not handle yet (a dependency is down, or what it needs is
/// not visible yet): the batch runner reports it failed, so the queue delivers it again and,
/// after the queue's `maxReceiveCount`, moves it to the dead-letter queue. The cause is kept
/// as the error's source.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct Retry(Box<dyn std::error::Error + Send + Sync>);

impl Retry {
    /// `cause` (an error, or a reason as text) as a retry: `.map_err(Retry::because)?`.
    pub fn because(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self(cause.into())
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error;

    use super::*;

    #[test]
    fn an_invalid_input_is_a_400_with_its_detail() {
        let problem = Problem::from(Invalid("quantity must be 1 to 99".into()));
        assert_eq!(problem.status, 400);
        assert_eq!(problem.detail, "quantity must be 1 to 99");
    }

    #[test]
    fn a_retry_reads_as_its_cause_and_keeps_the_cause_as_its_source() {
        let cause = std::io::Error::other("connection reset");
        let retry = Retry::because(cause);
        assert_eq!(retry.to_string(), "connection reset");
        assert!(retry.source().is_none(), "transparent: the cause's own source, none here");
        let retry = Retry::because("the order is not visible yet");
        assert_eq!(retry.to_string(), "the order is not visible yet");
    }
}
