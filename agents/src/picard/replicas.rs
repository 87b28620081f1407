//! Picard among replicas: the leases this replica gains and loses, and what other replicas
//! write to the shared store, reach his mailbox.

use std::time::Duration;

use ractor::ActorRef;
use squad_protocols::EventKind;
use squad_runtime::shards::{Change, INTAKE, Ownership};

use super::PicardMsg;
use crate::CrewContext;

/// How often a replica looks again at every unfinished incident of the shards it holds.
const SWEEP_EVERY: Duration = Duration::from_secs(15);

/// The shard leases held now (not the intake's).
fn shards_held(ownership: &Ownership) -> Vec<String> {
    ownership
        .held()
        .into_iter()
        .map(|(lease, _)| lease)
        .filter(|l| l != INTAKE)
        .collect()
}

/// Among replicas: leases acquired and lost reach Picard, and so do incidents another replica
/// opened or moved (the store publishes other replicas' appends), so that the holder of their
/// shard takes them up.
pub(super) fn follow(ctx: &CrewContext, myself: &ActorRef<PicardMsg>) {
    let mut changes = ctx.ownership.subscribe();
    // What was acquired before this Picard listened.
    let _ = myself.send_message(PicardMsg::ShardsHeld(shards_held(ctx.ownership.as_ref())));
    let me = myself.clone();
    tokio::spawn(async move {
        loop {
            let msg = match changes.recv().await {
                Ok(Change::Acquired { lease, .. }) => PicardMsg::ShardsHeld(vec![lease]),
                Ok(Change::Lost { lease }) => PicardMsg::ShardLost(lease),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => return,
            };
            if me.send_message(msg).is_err() {
                return;
            }
        }
    });
    // A missed notice (the store's connection dropped a moment) is made up for by a sweep.
    let (ownership, me) = (ctx.ownership.clone(), myself.clone());
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(SWEEP_EVERY).await;
            let held = shards_held(ownership.as_ref());
            if !held.is_empty() && me.send_message(PicardMsg::ShardsHeld(held)).is_err() {
                return;
            }
        }
    });
    let mut events = ctx.journal.store().subscribe();
    let me = myself.clone();
    tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(e) => {
                    let wakes = matches!(
                        e.kind,
                        EventKind::Opened { .. }
                            | EventKind::StateChanged { .. }
                            | EventKind::AlertResolved { .. }
                            | EventKind::Approved { .. }
                    );
                    if wakes && me.send_message(PicardMsg::Advance(e.incident)).is_err() {
                        return;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => return,
            }
        }
    });
}
