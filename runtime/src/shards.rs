//! Who acts on what when two or more replicas share one store: the work is split into shards
//! (by workload), each guarded by a lease (`coordination.k8s.io/v1` Leases through the kube
//! adapter; [`MemoryLeases`] in tests), plus one lease for the intake (turning accepted alerts
//! into incidents, where alerts are grouped) and one presence lease per replica, so that each
//! replica knows how many share the shards and takes its fair share.
//!
//! A replica acts on an incident only while it holds the incident's shard. It holds a lease
//! until the local deadline of its last successful renewal: the moment the renewal request was
//! sent plus the lease's duration minus a margin. Past that deadline it has stopped acting
//! (its [`Change::Lost`] has gone out) whether or not it could reach the server, while another
//! replica can take the lease only once the server's record has gone unrenewed for the whole
//! duration: a replica that loses a lease stops acting on it at least `margin` before another
//! takes it (clocks between nodes must agree to within that margin, as for any Kubernetes
//! lease). Each acquisition increments the lease's transitions count, the fencing epoch.
//!
//! A process without replicas ([`Ownership::everything`]) holds every shard for ever.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use squad_protocols::WorkloadRef;
use tokio::sync::broadcast;
use tokio::time::Instant;

use crate::ports::{PortError, PortResult};
use crate::store::{Fence, IncidentStore};

/// The intake's lease.
pub const INTAKE: &str = "intake";
const SHARD_PREFIX: &str = "shard-";
const MEMBER_PREFIX: &str = "member-";

/// A lease as the server holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRecord {
    pub name: String,
    pub holder: Option<String>,
    pub renewed: Option<DateTime<Utc>>,
    pub duration: Duration,
    /// How many times it changed hands: the fencing epoch of its holder.
    pub transitions: u64,
}

impl LeaseRecord {
    /// Whether the holder's renewal is older than the lease's duration at `now`.
    pub fn expired(&self, now: DateTime<Utc>) -> bool {
        let Some(renewed) = self.renewed else {
            return true;
        };
        let duration = chrono::Duration::from_std(self.duration).unwrap_or(chrono::Duration::MAX);
        renewed + duration < now
    }

    fn held_by_other(&self, me: &str, now: DateTime<Utc>) -> bool {
        self.holder.as_deref().is_some_and(|h| h != me) && !self.expired(now)
    }
}

/// Where leases live.
#[async_trait]
pub trait Leases: Send + Sync {
    /// Every lease of this squad (shards, intake, members), as the server holds them.
    async fn list(&self) -> PortResult<Vec<LeaseRecord>>;
    /// Takes lease `name` for `holder` when it is missing, free, expired or already `holder`'s
    /// (a renewal), in one conditional write that fails if another writer changed it first.
    /// Returns the fencing epoch when `holder` holds it afterwards, none otherwise.
    async fn claim(
        &self,
        name: &str,
        holder: &str,
        duration: Duration,
        now: DateTime<Utc>,
    ) -> PortResult<Option<u64>>;
    /// Gives lease `name` up if `holder` holds it.
    async fn release(&self, name: &str, holder: &str) -> PortResult<()>;
    /// Deletes lease `name` (a departed replica's presence).
    async fn forget(&self, name: &str) -> PortResult<()>;
}

/// A lease held or lost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Acquired { lease: String, epoch: u64 },
    Lost { lease: String },
}

struct Held {
    epoch: u64,
    holder: String,
    valid_until: Instant,
}

/// What this replica holds.
pub struct Ownership {
    shards: u32,
    everything: bool,
    held: Mutex<BTreeMap<String, Held>>,
    tx: broadcast::Sender<Change>,
}

/// The shard lease named for shard `i`.
pub fn shard_lease(i: u32) -> String {
    format!("{SHARD_PREFIX}{i}")
}

/// The shard of `workload` among `shards`: a hash of its namespace, kind and name, the same in
/// every replica and every version.
pub fn shard_of(workload: &WorkloadRef, shards: u32) -> u32 {
    use sha2::{Digest, Sha256};
    let key = format!("{}/{}/{}", workload.namespace, workload.kind, workload.name);
    let digest = Sha256::digest(key.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u32::try_from(u64::from_be_bytes(first) % u64::from(shards.max(1))).unwrap_or(0)
}

impl Ownership {
    /// A single process: every shard and the intake, for ever.
    pub fn everything(shards: u32) -> Arc<Ownership> {
        Arc::new(Ownership {
            shards: shards.max(1),
            everything: true,
            held: Mutex::new(BTreeMap::new()),
            tx: broadcast::channel(256).0,
        })
    }

    /// A replica among others: nothing until [`keep_leases`] acquires it.
    pub fn leased(shards: u32) -> Arc<Ownership> {
        Arc::new(Ownership {
            shards: shards.max(1),
            everything: false,
            held: Mutex::new(BTreeMap::new()),
            tx: broadcast::channel(256).0,
        })
    }

    pub fn shards(&self) -> u32 {
        self.shards
    }

    /// Whether this process holds every shard without leases.
    pub fn is_everything(&self) -> bool {
        self.everything
    }

    /// The shard lease `workload`'s incidents are acted on under.
    pub fn lease_of(&self, workload: &WorkloadRef) -> String {
        shard_lease(shard_of(workload, self.shards))
    }

    /// Whether this replica holds `lease` now (before its local deadline).
    pub fn holds(&self, lease: &str) -> bool {
        if self.everything {
            return true;
        }
        self.lock()
            .get(lease)
            .is_some_and(|h| h.valid_until > Instant::now())
    }

    /// Whether this replica acts on `workload`'s incidents now.
    pub fn holds_workload(&self, workload: &WorkloadRef) -> bool {
        self.holds(&self.lease_of(workload))
    }

    /// This replica's tenure of `lease` while it holds it, for a store that checks writes
    /// against it (None when this process holds everything: nothing to check).
    pub fn fence(&self, lease: &str) -> Option<Fence> {
        if self.everything {
            return None;
        }
        self.lock()
            .get(lease)
            .filter(|h| h.valid_until > Instant::now())
            .map(|h| Fence {
                lease: lease.to_owned(),
                holder: h.holder.clone(),
                epoch: h.epoch,
            })
    }

    /// The shard and intake leases held now, with their epochs (for `/readyz` and `/metrics`).
    pub fn held(&self) -> Vec<(String, u64)> {
        if self.everything {
            return std::iter::once((INTAKE.to_owned(), 0))
                .chain((0..self.shards).map(|i| (shard_lease(i), 0)))
                .collect();
        }
        let now = Instant::now();
        self.lock()
            .iter()
            .filter(|(name, h)| h.valid_until > now && !name.starts_with(MEMBER_PREFIX))
            .map(|(name, h)| (name.clone(), h.epoch))
            .collect()
    }

    /// Every lease of the work (the intake's, then each shard's) and whether this replica holds
    /// it now: what `/readyz` and `/metrics` report.
    pub fn leases(&self) -> Vec<(String, bool)> {
        let held = self.held();
        wanted(self.shards)
            .into_iter()
            .map(|lease| {
                let holds = held.iter().any(|(l, _)| *l == lease);
                (lease, holds)
            })
            .collect()
    }

    /// Leases acquired and lost from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.tx.subscribe()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Held>> {
        self.held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn renewed(&self, lease: &str, holder: &str, epoch: u64, valid_until: Instant) {
        let new = {
            let mut held = self.lock();
            let was = held
                .get(lease)
                .is_some_and(|h| h.valid_until > Instant::now() && h.epoch == epoch);
            let holder = holder.to_owned();
            held.insert(
                lease.to_owned(),
                Held {
                    epoch,
                    holder,
                    valid_until,
                },
            );
            !was
        };
        if new && !lease.starts_with(MEMBER_PREFIX) {
            let _ = self.tx.send(Change::Acquired {
                lease: lease.to_owned(),
                epoch,
            });
        }
    }

    fn lost(&self, lease: &str) {
        if self.lock().remove(lease).is_some() && !lease.starts_with(MEMBER_PREFIX) {
            let _ = self.tx.send(Change::Lost {
                lease: lease.to_owned(),
            });
        }
    }

    /// Drops every lease whose local deadline has passed; returns them.
    fn expire(&self) -> Vec<String> {
        let now = Instant::now();
        let gone: Vec<String> = self
            .lock()
            .iter()
            .filter(|(_, h)| h.valid_until <= now)
            .map(|(n, _)| n.clone())
            .collect();
        for name in &gone {
            self.lost(name);
        }
        gone
    }
}

/// How a replica keeps its leases.
#[derive(Debug, Clone)]
pub struct LeaseParams {
    /// This replica's name (the pod's name).
    pub identity: String,
    /// The wall clock lease records are stamped with (tokio time in tests).
    pub clock: crate::Clock,
    /// How long a lease lasts unrenewed.
    pub duration: Duration,
    /// How often leases are renewed and free ones looked for.
    pub renew_every: Duration,
    /// How long before the server's expiry this replica stops acting on a lease it could not
    /// renew (at least the clocks' disagreement plus a request's time).
    pub margin: Duration,
}

/// Whom a lease belongs to: `shards` shard leases, the intake, and one per replica.
fn wanted(shards: u32) -> Vec<String> {
    std::iter::once(INTAKE.to_owned())
        .chain((0..shards).map(shard_lease))
        .collect()
}

/// One round: renew what this replica holds, take its fair share of free or expired shards
/// (and the intake when free), give up shards beyond its share when another replica has fewer,
/// drop what could not be renewed in time. Returns the leases held after the round.
///
/// With `fences` (the store the replicas share), every tenure the Lease server confirms is
/// raised in the store before this replica acts under it.
pub async fn lease_round(
    ownership: &Ownership,
    leases: &dyn Leases,
    params: &LeaseParams,
    fences: Option<&dyn IncidentStore>,
) -> PortResult<BTreeSet<String>> {
    let me = params.identity.as_str();
    let member = format!("{MEMBER_PREFIX}{me}");
    let sent = Instant::now();
    let now = params.clock.now();
    let valid_until = sent + params.duration.saturating_sub(params.margin);
    // Presence first: others count this replica from it.
    let listed = leases.list().await;
    if let Some(epoch) = leases.claim(&member, me, params.duration, now).await? {
        ownership.renewed(&member, me, epoch, valid_until);
    }
    let listed = listed?;
    let by_name: BTreeMap<&str, &LeaseRecord> =
        listed.iter().map(|l| (l.name.as_str(), l)).collect();
    let live: BTreeSet<&str> = listed
        .iter()
        .filter(|l| l.name.starts_with(MEMBER_PREFIX) && !l.expired(now))
        .filter_map(|l| l.holder.as_deref())
        .chain([me])
        .collect();
    // A replica gone for ten durations is forgotten.
    for l in &listed {
        let long_gone = l.renewed.is_none_or(|r| {
            let ten =
                chrono::Duration::from_std(params.duration * 10).unwrap_or(chrono::Duration::MAX);
            r + ten < now
        });
        if l.name.starts_with(MEMBER_PREFIX) && l.name != member && long_gone {
            let _ = leases.forget(&l.name).await;
        }
    }
    let share = ownership
        .shards
        .div_ceil(u32::try_from(live.len()).unwrap_or(1).max(1));
    let mut mine: Vec<String> = wanted(ownership.shards)
        .into_iter()
        .filter(|n| n.starts_with(SHARD_PREFIX) && ownership.holds(n))
        .collect();
    // Beyond the share while another replica holds fewer: give the extra ones up (stop acting
    // first, then release), highest shard first.
    let counts: BTreeMap<&str, u32> = listed
        .iter()
        .filter(|l| l.name.starts_with(SHARD_PREFIX) && !l.expired(now))
        .filter_map(|l| l.holder.as_deref())
        .fold(BTreeMap::new(), |mut m, h| {
            *m.entry(h).or_default() += 1;
            m
        });
    // Short: fewer than `share - 1`. When the shards do not divide evenly, a fair spread leaves
    // some replicas one below the share (8 over 3: 3, 3, 2), so only fewer than that calls
    // for giving one up; a looser rule would hand a shard back and forth. At least 1: with a
    // share of 1, a replica holding none is short.
    let someone_short = live
        .iter()
        .any(|r| *r != me && counts.get(r).copied().unwrap_or(0) < share.saturating_sub(1).max(1));
    while someone_short && u32::try_from(mine.len()).unwrap_or(u32::MAX) > share {
        if let Some(extra) = mine.pop() {
            ownership.lost(&extra);
            leases.release(&extra, me).await?;
        }
    }
    let mut count = u32::try_from(mine.len()).unwrap_or(u32::MAX);
    for name in wanted(ownership.shards) {
        let record = by_name.get(name.as_str());
        let held = ownership.holds(&name);
        let is_shard = name.starts_with(SHARD_PREFIX);
        if !held {
            if record.is_some_and(|r| r.held_by_other(me, now)) {
                continue;
            }
            if is_shard && count >= share {
                continue;
            }
        }
        match leases.claim(&name, me, params.duration, now).await {
            Ok(Some(epoch)) => {
                // The store learns this tenure before this replica acts under it: from then on
                // it refuses the writes of an earlier tenure (another replica's, or this one's
                // from before it lost the lease).
                if let Some(store) = fences {
                    let fence = Fence {
                        lease: name.clone(),
                        holder: me.to_owned(),
                        epoch,
                    };
                    if let Err(e) = store.raise_fence(&fence) {
                        // Not acting under a tenure the store does not know; kept until the
                        // local deadline if already held (expire below).
                        tracing::warn!("leases: {name}: the store did not take the fence: {e}");
                        continue;
                    }
                }
                if !held && is_shard {
                    count += 1;
                }
                ownership.renewed(&name, me, epoch, valid_until);
            }
            Ok(None) => ownership.lost(&name),
            // Unreachable: keep it until its local deadline (expire below).
            Err(e) if e.is_transient() => {}
            Err(e) => return Err(e),
        }
    }
    ownership.expire();
    Ok(ownership.held().into_iter().map(|(n, _)| n).collect())
}

/// Keeps this replica's leases until `stop` fires, then releases them (after a graceful stop the
/// others take over at once rather than after an expiry).
pub async fn keep_leases(
    ownership: Arc<Ownership>,
    leases: Arc<dyn Leases>,
    params: LeaseParams,
    fences: Option<Arc<dyn IncidentStore>>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        if let Err(e) = lease_round(&ownership, leases.as_ref(), &params, fences.as_deref()).await {
            tracing::warn!("leases: {e}");
            ownership.expire();
        }
        tokio::select! {
            _ = tokio::time::sleep(params.renew_every) => {}
            _ = stop.changed() => break,
        }
    }
    let names: Vec<String> = ownership.lock().keys().cloned().collect();
    for name in names {
        ownership.lost(&name);
        let _ = leases.release(&name, &params.identity).await;
    }
}

/// Leases in memory, with the server's conditional writes, for tests.
#[derive(Default)]
pub struct MemoryLeases {
    leases: Mutex<BTreeMap<String, LeaseRecord>>,
    /// While set, every call fails as an unreachable server would.
    pub down: std::sync::atomic::AtomicBool,
}

impl MemoryLeases {
    fn check(
        &self,
        what: &str,
    ) -> PortResult<std::sync::MutexGuard<'_, BTreeMap<String, LeaseRecord>>> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(PortError::Unavailable {
                what: what.into(),
                detail: "the lease server is down".into(),
            });
        }
        Ok(self
            .leases
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    pub fn record(&self, name: &str) -> Option<LeaseRecord> {
        self.leases
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(name)
            .cloned()
    }
}

#[async_trait]
impl Leases for MemoryLeases {
    async fn list(&self) -> PortResult<Vec<LeaseRecord>> {
        Ok(self.check("list leases")?.values().cloned().collect())
    }

    async fn claim(
        &self,
        name: &str,
        holder: &str,
        duration: Duration,
        now: DateTime<Utc>,
    ) -> PortResult<Option<u64>> {
        let mut all = self.check("claim a lease")?;
        let record = all.entry(name.to_owned()).or_insert_with(|| LeaseRecord {
            name: name.to_owned(),
            holder: None,
            renewed: None,
            duration,
            transitions: 0,
        });
        if record.held_by_other(holder, now) {
            return Ok(None);
        }
        if record.holder.as_deref() != Some(holder) {
            record.transitions += 1;
            record.holder = Some(holder.to_owned());
        }
        record.renewed = Some(now);
        record.duration = duration;
        Ok(Some(record.transitions))
    }

    async fn release(&self, name: &str, holder: &str) -> PortResult<()> {
        let mut all = self.check("release a lease")?;
        if let Some(r) = all.get_mut(name)
            && r.holder.as_deref() == Some(holder)
        {
            r.holder = None;
            r.renewed = None;
        }
        Ok(())
    }

    async fn forget(&self, name: &str) -> PortResult<()> {
        self.check("delete a lease")?.remove(name);
        Ok(())
    }
}

mod fenced;
pub use fenced::FencedStore;

#[cfg(test)]
mod tests;
