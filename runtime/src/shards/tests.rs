#![allow(clippy::unwrap_used)]
use super::*;

const SHARDS: u32 = 8;

fn params(identity: &str, clock: &crate::Clock) -> LeaseParams {
    LeaseParams {
        identity: identity.into(),
        clock: clock.clone(),
        duration: Duration::from_secs(15),
        renew_every: Duration::from_secs(2),
        margin: Duration::from_secs(5),
    }
}

/// A workload, its incident and the event that opens it.
fn web_incident() -> (
    WorkloadRef,
    squad_protocols::IncidentId,
    squad_protocols::EventKind,
) {
    let web = WorkloadRef::deployment("shop", "web");
    let opened = squad_protocols::EventKind::Opened {
        alert: squad_protocols::Alert::firing("A").with_label("namespace", "shop"),
        workload: web.clone(),
    };
    (web, squad_protocols::IncidentId("inc-web".into()), opened)
}

fn shards_held(o: &Ownership) -> usize {
    o.held()
        .iter()
        .filter(|(n, _)| n.starts_with(SHARD_PREFIX))
        .count()
}

/// Leases behind a switch: one replica cut off from the server while the others still reach it.
struct Partitioned(Arc<MemoryLeases>, std::sync::atomic::AtomicBool);

#[async_trait]
impl Leases for Partitioned {
    async fn list(&self) -> PortResult<Vec<LeaseRecord>> {
        self.cut("list")?;
        self.0.list().await
    }
    async fn claim(
        &self,
        name: &str,
        holder: &str,
        duration: Duration,
        now: DateTime<Utc>,
    ) -> PortResult<Option<u64>> {
        self.cut("claim")?;
        self.0.claim(name, holder, duration, now).await
    }
    async fn release(&self, name: &str, holder: &str) -> PortResult<()> {
        self.cut("release")?;
        self.0.release(name, holder).await
    }
    async fn forget(&self, name: &str) -> PortResult<()> {
        self.cut("forget")?;
        self.0.forget(name).await
    }
}

impl Partitioned {
    fn cut(&self, what: &str) -> PortResult<()> {
        if self.1.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(PortError::Unavailable {
                what: what.into(),
                detail: "connection refused".into(),
            });
        }
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn one_replica_holds_every_shard_and_the_intake() {
    let clock = crate::Clock::starting_at(Utc::now());
    let leases = MemoryLeases::default();
    let a = Ownership::leased(SHARDS);
    let mut changes = a.subscribe();
    let held = lease_round(&a, &leases, &params("a", &clock), None)
        .await
        .unwrap();
    assert_eq!(held.len(), 9, "{held:?}");
    assert!(a.holds(INTAKE));
    let w = WorkloadRef::deployment("shop", "web");
    assert!(a.holds_workload(&w));
    assert_eq!(
        changes.try_recv().unwrap(),
        Change::Acquired {
            lease: INTAKE.into(),
            epoch: 1
        }
    );
    // A renewal keeps the epoch and says nothing new.
    lease_round(&a, &leases, &params("a", &clock), None)
        .await
        .unwrap();
    assert_eq!(leases.record(INTAKE).unwrap().transitions, 1);
    let mut more = 0;
    while changes.try_recv().is_ok() {
        more += 1;
    }
    assert_eq!(
        more, SHARDS as usize,
        "one Acquired per shard, none on renewal"
    );
}

#[tokio::test(start_paused = true)]
async fn replicas_spread_the_shards_and_a_newcomer_gets_its_share() {
    let clock = crate::Clock::starting_at(Utc::now());
    let leases = MemoryLeases::default();
    let (a, b, c) = (
        Ownership::leased(SHARDS),
        Ownership::leased(SHARDS),
        Ownership::leased(SHARDS),
    );
    let round = |o: Arc<Ownership>, id: &'static str| {
        let (leases, clock) = (&leases, clock.clone());
        async move {
            lease_round(&o, leases, &params(id, &clock), None)
                .await
                .unwrap()
        }
    };
    round(a.clone(), "a").await;
    assert_eq!(shards_held(&a), 8);
    for _ in 0..3 {
        round(b.clone(), "b").await;
        round(a.clone(), "a").await;
        tokio::time::advance(Duration::from_secs(2)).await;
    }
    assert_eq!((shards_held(&a), shards_held(&b)), (4, 4));
    for _ in 0..4 {
        round(c.clone(), "c").await;
        round(a.clone(), "a").await;
        round(b.clone(), "b").await;
        tokio::time::advance(Duration::from_secs(2)).await;
    }
    let mut counts = [shards_held(&a), shards_held(&b), shards_held(&c)];
    counts.sort_unstable();
    assert_eq!(counts, [2, 3, 3]);
    // No lease is held twice, and one replica has the intake.
    let all: Vec<String> = [&a, &b, &c]
        .iter()
        .flat_map(|o| o.held().into_iter().map(|(n, _)| n))
        .collect();
    let unique: BTreeSet<&String> = all.iter().collect();
    assert_eq!(all.len(), unique.len(), "{all:?}");
    assert_eq!(all.len(), 9);
}

#[tokio::test(start_paused = true)]
async fn a_replica_cut_off_stops_acting_before_another_takes_over() {
    let clock = crate::Clock::starting_at(Utc::now());
    let shared = Arc::new(MemoryLeases::default());
    let to_a = Partitioned(shared.clone(), Default::default());
    let (a, b) = (Ownership::leased(SHARDS), Ownership::leased(SHARDS));
    lease_round(&a, &to_a, &params("a", &clock), None)
        .await
        .unwrap();
    lease_round(&b, shared.as_ref(), &params("b", &clock), None)
        .await
        .unwrap();
    assert_eq!((shards_held(&a), shards_held(&b)), (8, 0));
    // A loses the server: it keeps renewing in vain; B keeps trying.
    to_a.1.store(true, std::sync::atomic::Ordering::SeqCst);
    let cut = Instant::now();
    let (mut a_stopped, mut b_took) = (None, None);
    for _ in 0..30 {
        tokio::time::advance(Duration::from_secs(1)).await;
        let _ = lease_round(&a, &to_a, &params("a", &clock), None).await;
        lease_round(&b, shared.as_ref(), &params("b", &clock), None)
            .await
            .unwrap();
        let (ha, hb) = (a.held(), b.held());
        for (lease, _) in &hb {
            assert!(
                !ha.iter().any(|(n, _)| n == lease),
                "{lease} held by both at {:?}",
                cut.elapsed()
            );
        }
        if ha.is_empty() && a_stopped.is_none() {
            a_stopped = Some(cut.elapsed());
        }
        if hb.len() == 9 && b_took.is_none() {
            b_took = Some(cut.elapsed());
        }
    }
    let (a_stopped, b_took) = (a_stopped.unwrap(), b_took.unwrap());
    assert!(
        a_stopped < b_took,
        "A stopped at {a_stopped:?}, B took over at {b_took:?}"
    );
    assert!(b_took <= Duration::from_secs(17), "{b_took:?}");
    // The epochs moved on: a write fenced with A's epoch is a stale one.
    assert_eq!(shared.record(INTAKE).unwrap().transitions, 2);
}

#[test]
fn the_shard_of_a_workload_is_stable_and_spread() {
    let w = WorkloadRef::deployment("production", "payment-service");
    assert_eq!(shard_of(&w, 8), shard_of(&w.clone(), 8));
    let mut seen = BTreeSet::new();
    for i in 0..200 {
        seen.insert(shard_of(&WorkloadRef::deployment("ns", format!("w{i}")), 8));
    }
    assert_eq!(seen.len(), 8);
    assert!(Ownership::everything(8).holds_workload(&w));
    assert_eq!(Ownership::everything(8).held().len(), 9);
}

#[tokio::test(start_paused = true)]
async fn a_replica_writes_only_what_its_leases_cover() {
    use crate::store::{IncidentStore, MemoryStore, StoreError};
    use squad_protocols::{Author, EventKind};
    let clock = crate::Clock::starting_at(Utc::now());
    let leases = MemoryLeases::default();
    let inner: Arc<dyn IncidentStore> = Arc::new(MemoryStore::new());
    let a = Ownership::leased(SHARDS);
    let store = FencedStore::new(inner.clone(), a.clone());
    let (web, id, opened) = web_incident();
    let note = || EventKind::Note { text: "x".into() };
    // Nothing held: nothing written, and the error names the lease.
    let e = store
        .append(&id, Utc::now(), Author::Picard, opened.clone())
        .unwrap_err();
    assert!(matches!(e, StoreError::Fenced { .. }), "{e}");
    lease_round(&a, &leases, &params("a", &clock), Some(inner.as_ref()))
        .await
        .unwrap();
    store
        .append(&id, Utc::now(), Author::Picard, opened)
        .unwrap();
    store
        .append(&id, Utc::now(), Author::Belanna, note())
        .unwrap();
    // Another replica takes the shard (after A's leases lapse): A's crew is fenced off, a
    // person's approval still goes through any replica.
    tokio::time::advance(Duration::from_secs(16)).await;
    let b = Ownership::leased(SHARDS);
    for _ in 0..2 {
        lease_round(&b, &leases, &params("b", &clock), Some(inner.as_ref()))
            .await
            .unwrap();
    }
    assert!(b.holds_workload(&web));
    assert!(!a.holds_workload(&web), "A past its local deadline");
    let e = store
        .append(&id, Utc::now(), Author::Belanna, note())
        .unwrap_err();
    assert!(e.to_string().contains(&a.lease_of(&web)), "{e}");
    store
        .append(
            &id,
            Utc::now(),
            Author::Human,
            EventKind::Approved { by: "ana".into() },
        )
        .unwrap();
    assert!(
        store.set_intake_processed(0).is_err(),
        "the intake is B's now"
    );
    assert_eq!(inner.events(&id).unwrap().len(), 3);
}

#[tokio::test(start_paused = true)]
async fn the_store_refuses_a_former_holder_whose_clock_says_it_still_holds() {
    use crate::store::{IncidentStore, MemoryStore, StoreError};
    use squad_protocols::{Author, EventKind};
    let now = Utc::now();
    let leases = MemoryLeases::default();
    let inner: Arc<dyn IncidentStore> = Arc::new(MemoryStore::new());
    let a = Ownership::leased(SHARDS);
    let store_a = FencedStore::new(inner.clone(), a.clone());
    let (web, id, opened) = web_incident();
    let a_clock = crate::Clock::starting_at(now);
    lease_round(&a, &leases, &params("a", &a_clock), Some(inner.as_ref()))
        .await
        .unwrap();
    store_a.append(&id, now, Author::Picard, opened).unwrap();
    // B's clock runs 20 s ahead of A's: by it, A's Leases have expired, and B takes them while
    // A (by its own clock) is still well inside its local deadline.
    let b = Ownership::leased(SHARDS);
    let b_clock = crate::Clock::starting_at(now + chrono::Duration::seconds(20));
    for _ in 0..2 {
        lease_round(&b, &leases, &params("b", &b_clock), Some(inner.as_ref()))
            .await
            .unwrap();
    }
    assert!(b.holds_workload(&web));
    assert!(
        a.holds_workload(&web),
        "A's clock says it still holds the shard"
    );
    let e = store_a
        .append(
            &id,
            now,
            Author::Belanna,
            EventKind::Note {
                text: "late".into(),
            },
        )
        .unwrap_err();
    assert!(
        matches!(e, StoreError::Fenced { ref lease, .. } if *lease == a.lease_of(&web)),
        "{e}"
    );
    assert!(matches!(
        store_a.set_intake_processed(0),
        Err(StoreError::Fenced { .. })
    ));
    let store_b = FencedStore::new(inner.clone(), b.clone());
    store_b
        .append(
            &id,
            now,
            Author::Belanna,
            EventKind::Note { text: "b".into() },
        )
        .unwrap();
    let texts: Vec<String> = inner
        .events(&id)
        .unwrap()
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Note { text } => Some(text.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(texts, ["b"], "A's late write left nothing");
}

/// A shared store whose fence table can be cut off (the database down, or refusing the write).
struct FencesDown {
    inner: crate::store::MemoryStore,
    down: std::sync::atomic::AtomicBool,
}

impl crate::store::IncidentStore for FencesDown {
    fn append(
        &self,
        incident: &squad_protocols::IncidentId,
        at: DateTime<Utc>,
        author: squad_protocols::Author,
        kind: squad_protocols::EventKind,
    ) -> Result<squad_protocols::IncidentEvent, crate::store::StoreError> {
        self.inner.append(incident, at, author, kind)
    }
    fn events(
        &self,
        incident: &squad_protocols::IncidentId,
    ) -> Result<Vec<squad_protocols::IncidentEvent>, crate::store::StoreError> {
        self.inner.events(incident)
    }
    fn incident_ids(&self) -> Result<Vec<squad_protocols::IncidentId>, crate::store::StoreError> {
        self.inner.incident_ids()
    }
    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<squad_protocols::IncidentEvent> {
        self.inner.subscribe()
    }
    fn accept_alerts(
        &self,
        at: DateTime<Utc>,
        alerts: &[squad_protocols::Alert],
    ) -> Result<Vec<u64>, crate::store::StoreError> {
        self.inner.accept_alerts(at, alerts)
    }
    fn accepted_after(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<crate::Accepted>, crate::store::StoreError> {
        self.inner.accepted_after(after, limit)
    }
    fn intake_processed(&self) -> Result<Option<u64>, crate::store::StoreError> {
        self.inner.intake_processed()
    }
    fn set_intake_processed(&self, seq: u64) -> Result<(), crate::store::StoreError> {
        self.inner.set_intake_processed(seq)
    }
    fn raise_fence(&self, fence: &crate::store::Fence) -> Result<(), crate::store::StoreError> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(crate::store::StoreError::Backend {
                path: "postgres://db".into(),
                message: "connection refused".into(),
            });
        }
        self.inner.raise_fence(fence)
    }
    fn append_fenced(
        &self,
        fence: &crate::store::Fence,
        incident: &squad_protocols::IncidentId,
        at: DateTime<Utc>,
        author: squad_protocols::Author,
        kind: squad_protocols::EventKind,
    ) -> Result<squad_protocols::IncidentEvent, crate::store::StoreError> {
        self.inner.append_fenced(fence, incident, at, author, kind)
    }
}

#[tokio::test(start_paused = true)]
async fn a_lease_the_store_cannot_fence_is_not_acted_on() {
    use crate::store::{IncidentStore, StoreError};
    use squad_protocols::{Author, EventKind};
    use std::sync::atomic::Ordering::SeqCst;
    let clock = crate::Clock::starting_at(Utc::now());
    let leases = MemoryLeases::default();
    let shared = Arc::new(FencesDown {
        inner: crate::store::MemoryStore::new(),
        down: true.into(),
    });
    let inner: Arc<dyn IncidentStore> = shared.clone();
    let a = Ownership::leased(SHARDS);
    let store = FencedStore::new(inner.clone(), a.clone());
    let (_, id, opened) = web_incident();
    // The Lease server grants every lease, the store takes no fence: the round still
    // succeeds (the server is fine), but nothing is held, and nothing is written.
    let held = lease_round(&a, &leases, &params("a", &clock), Some(inner.as_ref()))
        .await
        .unwrap();
    assert!(
        held.iter().all(|n| n.starts_with(MEMBER_PREFIX)),
        "{held:?}"
    );
    assert!(!a.holds(INTAKE) && shards_held(&a) == 0);
    let e = store
        .append(&id, Utc::now(), Author::Picard, opened.clone())
        .unwrap_err();
    assert!(matches!(e, StoreError::Fenced { .. }), "{e}");
    // The store back: the next round acts.
    shared.down.store(false, SeqCst);
    lease_round(&a, &leases, &params("a", &clock), Some(inner.as_ref()))
        .await
        .unwrap();
    assert!(a.holds(INTAKE) && shards_held(&a) == 8);
    store
        .append(&id, Utc::now(), Author::Picard, opened)
        .unwrap();
    // Down again while held: each renewal's fence fails, so the leases are kept only until the
    // local deadline of the last tenure the store took (duration - margin = 10 s), then
    // dropped, though the Lease server renewed them every second.
    shared.down.store(true, SeqCst);
    let cut = Instant::now();
    let mut dropped = None;
    for _ in 0..15 {
        tokio::time::advance(Duration::from_secs(1)).await;
        lease_round(&a, &leases, &params("a", &clock), Some(inner.as_ref()))
            .await
            .unwrap();
        if dropped.is_none() && !a.holds(INTAKE) {
            assert_eq!(shards_held(&a), 0);
            dropped = Some(cut.elapsed());
        }
    }
    assert_eq!(dropped, Some(Duration::from_secs(10)));
    let e = store
        .append(
            &id,
            Utc::now(),
            Author::Belanna,
            EventKind::Note { text: "x".into() },
        )
        .unwrap_err();
    assert!(matches!(e, StoreError::Fenced { .. }), "{e}");
    assert_eq!(inner.events(&id).unwrap().len(), 1);
}
