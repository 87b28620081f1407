//! The actor every specialist (B'Elanna, Worf, Data, Scribe, Ralph) runs in.
//!
//! The handler never awaits the work: it spawns the member's skill and the spawned task replies
//! to the assignment, so the mailbox keeps moving and a slow forge call never blocks the member.

use std::sync::Arc;

use async_trait::async_trait;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use squad_protocols::{Assignment, Member, Report};
use squad_runtime::{CrewError, CrewMsg};
use tracing::Instrument;

use crate::CrewContext;

/// A member's work on an assignment.
#[async_trait]
pub trait Skill: Send + Sync + 'static {
    fn member(&self) -> Member;
    async fn perform(
        &self,
        ctx: &CrewContext,
        assignment: &Assignment,
    ) -> Result<Report, CrewError>;
}

pub struct Specialist {
    pub skill: Arc<dyn Skill>,
    pub ctx: CrewContext,
}

impl Actor for Specialist {
    type Msg = CrewMsg;
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, _myself: ActorRef<CrewMsg>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<CrewMsg>,
        msg: CrewMsg,
        _state: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            CrewMsg::Assign { assignment, reply } => {
                // A panic here is a panic inside the actor: the supervisor sees it and restarts us.
                self.ctx.faults.check(self.skill.member());
                let skill = self.skill.clone();
                let ctx = self.ctx.clone();
                let span = tracing::info_span!("assignment", member = %skill.member(), incident = %assignment.incident);
                tokio::spawn(
                    async move {
                        let member = skill.member();
                        let result = skill.perform(&ctx, &assignment).await;
                        if let Err(e) = &result {
                            tracing::warn!(%member, "assignment failed: {e}");
                        }
                        let _ = reply.send(result);
                    }
                    .instrument(span),
                );
            }
        }
        Ok(())
    }
}
