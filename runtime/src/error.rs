//! Why crew work failed, typed, so the retry decision can tell a forbidden write (retrying
//! cannot help) from an API server that timed out (it can).

use squad_protocols::Member;

use crate::journal::JournalError;
use crate::ports::PortError;
use crate::store::StoreError;

/// Why a step of an incident, or a member's assignment, failed.
#[derive(Debug, thiserror::Error)]
pub enum CrewError {
    /// An adapter (the cluster, the forge) failed.
    #[error(transparent)]
    Port(#[from] PortError),
    /// The incident store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A side effect through the journal failed.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// A member could not be asked, did not answer, or could not do it.
    #[error(transparent)]
    Ask(#[from] Box<AskError>),
    /// The work cannot be done as asked: a precondition is missing, or an input cannot be used.
    /// Asking again does not change that.
    #[error("{what}: {detail}")]
    Invalid { what: String, detail: String },
}

impl CrewError {
    pub fn invalid(what: impl Into<String>, detail: impl std::fmt::Display) -> CrewError {
        CrewError::Invalid {
            what: what.into(),
            detail: detail.to_string(),
        }
    }

    /// Whether trying again later may succeed: a timeout, an unavailable service, a member that
    /// was restarting. A refusal (403, 404, 422), a broken precondition or a corrupt log is not.
    pub fn is_transient(&self) -> bool {
        match self {
            CrewError::Port(e) => e.is_transient(),
            CrewError::Store(e) => store_transient(e),
            CrewError::Journal(JournalError::Store(e)) => store_transient(e),
            CrewError::Journal(JournalError::Effect { source, .. }) => source.is_transient(),
            CrewError::Journal(JournalError::Transition { .. }) => false,
            CrewError::Ask(e) => match e.as_ref() {
                AskError::NotRunning(_) | AskError::Timeout { .. } | AskError::Dropped { .. } => {
                    true
                }
                AskError::Refused { reason, .. } => reason.is_transient(),
            },
            CrewError::Invalid { .. } => false,
        }
    }
}

fn store_transient(e: &StoreError) -> bool {
    matches!(e, StoreError::Backend { .. })
}

impl From<AskError> for CrewError {
    fn from(e: AskError) -> CrewError {
        CrewError::Ask(Box::new(e))
    }
}

/// Why an ask to a member failed.
#[derive(Debug, thiserror::Error)]
pub enum AskError {
    #[error("{0} is not running")]
    NotRunning(Member),
    #[error("{member} did not answer within {seconds} s")]
    Timeout { member: Member, seconds: u64 },
    #[error("{member} stopped before answering (it failed or was restarted)")]
    Dropped { member: Member },
    #[error("{member} could not do it: {reason}")]
    Refused { member: Member, reason: CrewError },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_permanent_and_outages_transient() {
        let forbidden = CrewError::Port(PortError::Forbidden {
            what: "open PR".into(),
            detail: "403".into(),
        });
        assert!(!forbidden.is_transient());
        let unavailable = CrewError::Port(PortError::Unavailable {
            what: "list pods".into(),
            detail: "503".into(),
        });
        assert!(unavailable.is_transient());
        assert!(!CrewError::invalid("assign", "no diagnosis yet").is_transient());
        // A member's refusal is as transient as its reason.
        let refused = |reason| {
            CrewError::from(AskError::Refused {
                member: Member::Belanna,
                reason,
            })
        };
        assert!(!refused(forbidden).is_transient());
        assert!(refused(unavailable).is_transient());
        assert!(
            CrewError::from(AskError::Timeout {
                member: Member::Ralph,
                seconds: 1
            })
            .is_transient()
        );
    }
}
