//! Messages the crew's actors accept, and the directory that finds a member's current actor.

use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use ractor::{ActorRef, RpcReplyPort};
use squad_protocols::{Assignment, Member, Report};

use crate::{AskError, CrewError};

/// What a crew member (B'Elanna, Worf, Data, Scribe, Ralph) accepts.
pub enum CrewMsg {
    /// Do the assignment and reply with a report (or why it could not be done).
    Assign {
        assignment: Box<Assignment>,
        reply: RpcReplyPort<Result<Report, CrewError>>,
    },
}

/// Where each member's actor is right now. The supervisor updates it on every restart, so a
/// caller always reaches the live actor. One per runtime: no process-global names.
#[derive(Clone, Default)]
pub struct CrewDirectory {
    members: Arc<DashMap<Member, ActorRef<CrewMsg>>>,
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

/// Wake-ups for whoever follows a pull request: a webhook about PR #n wakes the member waiting on
/// it before its next poll. A wake-up with nobody waiting is kept for the next wait.
#[derive(Clone, Default)]
pub struct Wakeups {
    prs: Arc<DashMap<u64, Arc<tokio::sync::Notify>>>,
}

impl Wakeups {
    fn slot(&self, pr: u64) -> Arc<tokio::sync::Notify> {
        self.prs.entry(pr).or_default().clone()
    }

    /// Something happened to PR `pr`.
    pub fn wake(&self, pr: u64) {
        self.slot(pr).notify_one();
    }

    /// Waits `d`, or less if PR `pr` is woken. Returns whether it was woken.
    pub async fn sleep(&self, pr: u64, d: Duration) -> bool {
        let slot = self.slot(pr);
        tokio::select! {
            _ = tokio::time::sleep(d) => false,
            _ = slot.notified() => true,
        }
    }
}

#[cfg(test)]
mod wakeup_tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_wake_cuts_the_wait_short_and_is_kept_until_someone_waits() {
        let w = Wakeups::default();
        w.wake(7);
        let start = tokio::time::Instant::now();
        assert!(w.sleep(7, Duration::from_secs(300)).await);
        assert_eq!(start.elapsed(), Duration::ZERO);
        assert!(!w.sleep(7, Duration::from_secs(300)).await);
        assert_eq!(start.elapsed(), Duration::from_secs(300));
        // Another PR's wake-up is not this one's.
        w.wake(8);
        assert!(!w.sleep(7, Duration::from_secs(1)).await);
    }
}
