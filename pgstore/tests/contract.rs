//! The store contract (`squad_runtime::store::contract`) on a real PostgreSQL, plus what only a
//! shared store has to do: two stores (two replicas) on one database see each other's writes
//! and number them without gaps, and a reconnect finds everything.
#![allow(clippy::unwrap_used)]
// The store is synchronous (as redb is): its tests wait on real threads and a real clock.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::sync::Arc;

use chrono::Utc;
use squad_pgstore::PgStore;
use squad_protocols::{Alert, Author, EventKind, IncidentId};
use squad_runtime::store::{Fence, IncidentStore, StoreError, contract};
use squad_testkit::postgres::{RealPostgres, available_or_skip};

fn server() -> Option<RealPostgres> {
    if !available_or_skip("pgstore contract").unwrap() {
        return None;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    Some(rt.block_on(RealPostgres::start()).unwrap())
}

#[test]
fn the_postgres_store_keeps_the_store_contract() {
    let Some(pg) = server() else { return };
    contract::appends_in_order(&PgStore::connect(&pg.create_database("appends").unwrap()).unwrap());
    contract::keeps_the_intake_log(
        &PgStore::connect(&pg.create_database("intake").unwrap()).unwrap(),
    );
    let url = pg.create_database("concurrent").unwrap();
    contract::concurrent_writers_number_without_gaps_or_late_arrivals(Arc::new(
        PgStore::connect(&url).unwrap(),
    ));
    contract::refuses_an_earlier_tenure(
        &PgStore::connect(&pg.create_database("fences").unwrap()).unwrap(),
    );
}

/// A store that sends each call to one of several stores in turn: replicas taking turns.
struct Replicas(Vec<PgStore>, std::sync::atomic::AtomicUsize);

impl Replicas {
    fn next(&self) -> &PgStore {
        let i = self.1.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        &self.0[i % self.0.len()]
    }
}

impl IncidentStore for Replicas {
    fn append(
        &self,
        incident: &IncidentId,
        at: chrono::DateTime<Utc>,
        author: Author,
        kind: EventKind,
    ) -> Result<squad_protocols::IncidentEvent, StoreError> {
        self.next().append(incident, at, author, kind)
    }
    fn events(
        &self,
        incident: &IncidentId,
    ) -> Result<Vec<squad_protocols::IncidentEvent>, StoreError> {
        self.next().events(incident)
    }
    fn incident_ids(&self) -> Result<Vec<IncidentId>, StoreError> {
        self.next().incident_ids()
    }
    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<squad_protocols::IncidentEvent> {
        self.0[0].subscribe()
    }
    fn accept_alerts(
        &self,
        at: chrono::DateTime<Utc>,
        alerts: &[Alert],
    ) -> Result<Vec<u64>, StoreError> {
        self.next().accept_alerts(at, alerts)
    }
    fn accepted_after(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<squad_runtime::store::Accepted>, StoreError> {
        self.next().accepted_after(after, limit)
    }
    fn intake_processed(&self) -> Result<Option<u64>, StoreError> {
        self.next().intake_processed()
    }
    fn set_intake_processed(&self, seq: u64) -> Result<(), StoreError> {
        self.next().set_intake_processed(seq)
    }
    fn raise_fence(&self, fence: &Fence) -> Result<(), StoreError> {
        self.next().raise_fence(fence)
    }
    fn append_fenced(
        &self,
        fence: &Fence,
        incident: &IncidentId,
        at: chrono::DateTime<Utc>,
        author: Author,
        kind: EventKind,
    ) -> Result<squad_protocols::IncidentEvent, StoreError> {
        self.next().append_fenced(fence, incident, at, author, kind)
    }
    fn set_intake_processed_fenced(&self, fence: &Fence, seq: u64) -> Result<(), StoreError> {
        self.next().set_intake_processed_fenced(fence, seq)
    }
}

#[test]
fn replicas_on_one_database_share_incidents_and_intake_without_gaps() {
    let Some(pg) = server() else { return };
    let url = pg.create_database("replicas").unwrap();
    let three = || {
        Replicas(
            (0..3).map(|_| PgStore::connect(&url).unwrap()).collect(),
            Default::default(),
        )
    };
    contract::concurrent_writers_number_without_gaps_or_late_arrivals(Arc::new(three()));
    // The fences hold across connections: each call below goes to another replica's store.
    let fences = pg.create_database("replica_fences").unwrap();
    contract::refuses_an_earlier_tenure(&Replicas(
        (0..3).map(|_| PgStore::connect(&fences).unwrap()).collect(),
        Default::default(),
    ));
    // Another replica, connected later, finds it all; schema creation is idempotent.
    let later = PgStore::connect(&url).unwrap();
    let id = IncidentId("inc-shared".into());
    assert_eq!(later.events(&id).unwrap().len(), 100);
    assert_eq!(later.accepted_after(None, 1000).unwrap().len(), 200);
    let e = later
        .append(
            &id,
            Utc::now(),
            Author::Ralph,
            EventKind::Note {
                text: "later".into(),
            },
        )
        .unwrap();
    assert_eq!(e.seq, 100);
}

#[test]
fn a_replica_hears_what_another_appended() {
    let Some(pg) = server() else { return };
    let url = pg.create_database("notices").unwrap();
    let (a, b) = (
        PgStore::connect(&url).unwrap(),
        PgStore::connect(&url).unwrap(),
    );
    let mut heard = b.subscribe();
    // The listener connects in the background: append until b has heard one.
    let id = IncidentId("inc-heard".into());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let event = loop {
        let e = a
            .append(
                &id,
                Utc::now(),
                Author::Picard,
                EventKind::Note { text: "x".into() },
            )
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(100));
        if let Ok(got) = heard.try_recv() {
            break (e, got);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "b never heard a's appends"
        );
    };
    assert_eq!(event.1.incident, id);
    // Its own appends are published once, not again through the notice.
    let mut own = a.subscribe();
    a.append(
        &id,
        Utc::now(),
        Author::Ralph,
        EventKind::Note { text: "y".into() },
    )
    .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(own.try_recv().is_ok());
    assert!(own.try_recv().is_err(), "a heard its own append twice");
}

#[test]
fn replicas_starting_together_create_the_schema_once() {
    let Some(pg) = server() else { return };
    let url = pg.create_database("together").unwrap();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || PgStore::connect(&url).map(|_| ()))
        })
        .collect();
    for t in threads {
        t.join().unwrap().unwrap();
    }
}

#[test]
fn an_unreachable_or_malformed_url_is_a_clear_error_without_the_password() {
    let Some(pg) = server() else { return };
    // A port nothing listens on (the server's own, plus one, is free often enough; a refusal
    // or a timeout both do).
    let port = squad_testkit::process::free_port().unwrap();
    let e = PgStore::connect(&format!("postgres://squad:hunter2@127.0.0.1:{port}/x"))
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("cannot connect") && !e.contains("hunter2"),
        "{e}"
    );
    assert!(e.contains("squad:***@127.0.0.1"), "{e}");
    let e = PgStore::connect("mysql://squad@127.0.0.1/x")
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("store.url"), "{e}");
    // A database that does not exist is named.
    let e = PgStore::connect(&pg.url("nowhere"))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("nowhere"), "{e}");
}
