//! The crew supervisor: one-for-one restarts with a restart-intensity limit and backoff.
//!
//! ractor has no restart policy of its own (and by default a supervisor stops when a child
//! does), so this actor implements it: when a member fails, it is restarted alone after a
//! backoff that doubles with each restart inside the window; past `max_restarts` within
//! `within_seconds`, the supervisor escalates — it reports and stops, taking the crew down
//! cleanly rather than flapping forever.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ractor::{Actor, ActorCell, ActorId, ActorProcessingErr, ActorRef, SpawnErr, SupervisionEvent};
use squad_config::settings::SupervisionSettings;
use squad_protocols::Member;

use crate::adapter::AdapterSpawner;
use tokio::time::Instant;

/// Starts a member's actor, linked to the supervisor, and publishes it where callers find it.
#[async_trait]
pub trait MemberFactory: Send + Sync {
    async fn spawn(&self, member: Member, supervisor: ActorCell) -> Result<ActorCell, SpawnErr>;
}

/// Told about restarts and escalations (the incident log, metrics, logs).
pub trait SupervisionObserver: Send + Sync {
    fn restarted(&self, member: Member, reason: &str);
    fn escalated(&self, member: Member, reason: &str);
}

pub struct CrewSupervisor;

pub struct SupervisorArgs {
    pub factory: Arc<dyn MemberFactory>,
    pub members: Vec<Member>,
    /// The adapters the members call (started first, restarted like members).
    pub adapters: Vec<Arc<dyn AdapterSpawner>>,
    pub settings: SupervisionSettings,
    pub observer: Arc<dyn SupervisionObserver>,
}

pub struct SupervisorState {
    args: SupervisorArgs,
    children: HashMap<ActorId, Child>,
    restarts: HashMap<Child, VecDeque<Instant>>,
}

/// What the supervisor restarts: a crew member, or an adapter (by its index in the arguments).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Child {
    Member(Member),
    Adapter(usize),
}

pub enum SupervisorMsg {
    Restart(Child),
}

#[derive(Debug, thiserror::Error)]
#[error("could not start {child}: {source}")]
pub struct SpawnError {
    child: String,
    #[source]
    source: SpawnErr,
}

impl SupervisorState {
    async fn start(
        &mut self,
        child: Child,
        myself: &ActorRef<SupervisorMsg>,
    ) -> Result<(), SpawnError> {
        let supervisor = myself.get_cell();
        let cell = match child {
            Child::Member(member) => self.args.factory.spawn(member, supervisor).await,
            Child::Adapter(n) => match self.args.adapters.get(n) {
                Some(adapter) => adapter.spawn(supervisor).await,
                None => return Ok(()),
            },
        }
        .map_err(|source| SpawnError {
            child: self.name(child),
            source,
        })?;
        self.children.insert(cell.get_id(), child);
        Ok(())
    }

    fn name(&self, child: Child) -> String {
        match child {
            Child::Member(member) => member.to_string(),
            Child::Adapter(n) => self.args.adapters.get(n).map_or_else(
                || format!("adapter {n}"),
                |a| format!("the {} adapter", a.name()),
            ),
        }
    }
}

impl Actor for CrewSupervisor {
    type Msg = SupervisorMsg;
    type State = SupervisorState;
    type Arguments = SupervisorArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: SupervisorArgs,
    ) -> Result<SupervisorState, ActorProcessingErr> {
        let mut state = SupervisorState {
            args,
            children: HashMap::new(),
            restarts: HashMap::new(),
        };
        // Adapters first: members call them from their first message on.
        for n in 0..state.args.adapters.len() {
            state.start(Child::Adapter(n), &myself).await?;
        }
        for member in state.args.members.clone() {
            state.start(Child::Member(member), &myself).await?;
        }
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: SupervisorMsg,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SupervisorMsg::Restart(child) => {
                if let Err(e) = state.start(child, &myself).await {
                    if let Child::Member(member) = child {
                        state.args.observer.escalated(member, &e.to_string());
                    }
                    tracing::error!("{e}; the supervisor stops");
                    myself.stop(Some(e.to_string()));
                }
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        evt: SupervisionEvent,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        let (cell, reason) = match evt {
            SupervisionEvent::ActorFailed(cell, err) => (cell, format!("failed: {err}")),
            SupervisionEvent::ActorTerminated(cell, _, reason) => (
                cell,
                format!(
                    "stopped: {}",
                    reason.unwrap_or_else(|| "no reason given".into())
                ),
            ),
            _ => return Ok(()),
        };
        let Some(child) = state.children.remove(&cell.get_id()) else {
            return Ok(());
        };
        let name = state.name(child);
        let s = &state.args.settings;
        let window = Duration::from_secs(s.within_seconds);
        let now = Instant::now();
        let history = state.restarts.entry(child).or_default();
        while history
            .front()
            .is_some_and(|t| now.duration_since(*t) > window)
        {
            history.pop_front();
        }
        if history.len() as u32 >= s.max_restarts {
            let why = format!(
                "{name} {reason}; {} restarts within {} s exceeds the limit of {}",
                history.len(),
                s.within_seconds,
                s.max_restarts
            );
            tracing::error!("{why}; escalating");
            if let Child::Member(member) = child {
                state.args.observer.escalated(member, &why);
            }
            myself.stop(Some(why));
            return Ok(());
        }
        let backoff =
            Duration::from_millis(s.backoff_ms.saturating_mul(1u64 << history.len().min(10)));
        history.push_back(now);
        tracing::warn!(?backoff, "{name} {reason}; restarting");
        if let Child::Member(member) = child {
            state.args.observer.restarted(member, &reason);
        }
        myself.send_after(backoff, move || SupervisorMsg::Restart(child));
        Ok(())
    }
}
