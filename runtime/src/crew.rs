//! Messages the crew's actors accept, and the directory that finds a member's current actor.

use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use ractor::{ActorRef, RpcReplyPort};
use squad_protocols::{Assignment, Member, Report};

/// What a crew member (B'Elanna, Worf, Data, Scribe, Ralph) accepts.
pub enum CrewMsg {
    /// Do the assignment and reply with a report (or why it could not be done).
    Assign {
        assignment: Box<Assignment>,
        reply: RpcReplyPort<Result<Report, String>>,
    },
}

/// Where each member's actor is right now. The supervisor updates it on every restart, so a
/// caller always reaches the live actor. One per runtime: no process-global names.
#[derive(Clone, Default)]
pub struct CrewDirectory {
    members: Arc<DashMap<Member, ActorRef<CrewMsg>>>,
}

/// Why an ask to a member failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AskError {
    #[error("{0} is not running")]
    NotRunning(Member),
    #[error("{member} did not answer within {seconds} s")]
    Timeout { member: Member, seconds: u64 },
    #[error("{member} stopped before answering (it failed or was restarted)")]
    Dropped { member: Member },
    #[error("{member} could not do it: {reason}")]
    Refused { member: Member, reason: String },
}

impl CrewDirectory {
    pub fn set(&self, member: Member, actor: ActorRef<CrewMsg>) {
        self.members.insert(member, actor);
    }

    pub fn remove(&self, member: Member) {
        self.members.remove(&member);
    }

    pub fn get(&self, member: Member) -> Option<ActorRef<CrewMsg>> {
        self.members.get(&member).map(|r| r.value().clone())
    }

    /// Sends an assignment to a member and waits for its report, at most `timeout`.
    pub async fn ask(&self, assignment: Assignment, timeout: Duration) -> Result<Report, AskError> {
        let member = assignment.member;
        let actor = self.get(member).ok_or(AskError::NotRunning(member))?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let msg = CrewMsg::Assign {
            assignment: Box::new(assignment),
            reply: RpcReplyPort::from(tx),
        };
        actor
            .send_message(msg)
            .map_err(|_| AskError::NotRunning(member))?;
        match tokio::time::timeout(timeout, rx).await {
            Err(_) => Err(AskError::Timeout {
                member,
                seconds: timeout.as_secs(),
            }),
            Ok(Err(_)) => Err(AskError::Dropped { member }),
            Ok(Ok(Err(reason))) => Err(AskError::Refused { member, reason }),
            Ok(Ok(Ok(report))) => Ok(report),
        }
    }
}
