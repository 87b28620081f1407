//! Starts crew members for the supervisor, and publishes each new actor where callers find it.

use std::sync::Arc;

use async_trait::async_trait;
use ractor::{Actor, ActorCell, SpawnErr};
use squad_protocols::Member;
use squad_runtime::supervisor::MemberFactory;

use crate::specialist::{Skill, Specialist};
use crate::{CrewContext, PicardHandle, belanna, data, picard, ralph, scribe, worf};

pub struct CrewFactory {
    pub ctx: CrewContext,
    pub picard: PicardHandle,
}

pub fn skill(member: Member) -> Option<Arc<dyn Skill>> {
    match member {
        Member::Belanna => Some(Arc::new(belanna::Belanna)),
        Member::Worf => Some(Arc::new(worf::Worf)),
        Member::Data => Some(Arc::new(data::Data)),
        Member::Scribe => Some(Arc::new(scribe::Scribe)),
        Member::Ralph => Some(Arc::new(ralph::Ralph)),
        Member::Picard => None,
    }
}

#[async_trait]
impl MemberFactory for CrewFactory {
    async fn spawn(&self, member: Member, supervisor: ActorCell) -> Result<ActorCell, SpawnErr> {
        match skill(member) {
            None => {
                let (actor, _) = Actor::spawn_linked(
                    None,
                    picard::Picard {
                        ctx: self.ctx.clone(),
                    },
                    (),
                    supervisor,
                )
                .await?;
                self.picard.set(actor.clone());
                Ok(actor.get_cell())
            }
            Some(skill) => {
                let (actor, _) = Actor::spawn_linked(
                    None,
                    Specialist {
                        skill,
                        ctx: self.ctx.clone(),
                    },
                    (),
                    supervisor,
                )
                .await?;
                self.ctx.directory.set(member, actor.clone());
                Ok(actor.get_cell())
            }
        }
    }
}
