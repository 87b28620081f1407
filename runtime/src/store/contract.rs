//! What every [`IncidentStore`] must do, as checks a store's own tests run on a fresh, empty
//! store: the embedded stores here, and the Postgres store in `squad-pgstore`. Each check panics
//! with what was expected and what the store did.
#![allow(clippy::unwrap_used)] // checks for stores' tests: a failure panics saying what differed

use std::sync::Arc;

use chrono::Utc;
use squad_protocols::{Alert, Author, EventKind, IncidentId, WorkloadRef};

use super::{Fence, IncidentStore, StoreError};

fn opened() -> EventKind {
    EventKind::Opened {
        alert: Alert::firing("A").with_label("namespace", "ns"),
        workload: WorkloadRef::deployment("ns", "w"),
    }
}

/// Appends are numbered from 0 per incident, read back in order, listed in opening order, folded
/// by `load`, published to subscribers; an unknown incident is `NotFound`.
pub fn appends_in_order(store: &dyn IncidentStore) {
    let a = IncidentId("inc-a".into());
    let b = IncidentId("inc-b".into());
    let mut rx = store.subscribe();
    let now = Utc::now();
    assert_eq!(
        store.append(&a, now, Author::System, opened()).unwrap().seq,
        0
    );
    assert_eq!(
        store.append(&b, now, Author::System, opened()).unwrap().seq,
        0
    );
    let e = store
        .append(
            &a,
            now,
            Author::Picard,
            EventKind::Note { text: "x".into() },
        )
        .unwrap();
    assert_eq!(e.seq, 1);
    let events = store.events(&a).unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[1], e, "an event reads back as appended");
    assert_eq!(store.incident_ids().unwrap(), vec![a.clone(), b]);
    assert_eq!(store.load(&a).unwrap().last_seq, 1);
    assert_eq!(rx.try_recv().unwrap().incident, a);
    assert!(matches!(
        store.load(&IncidentId("nope".into())),
        Err(StoreError::NotFound(_))
    ));
}

/// Accepted alerts are numbered in order across calls, read back after a watermark, limited,
/// and the watermark is kept.
pub fn keeps_the_intake_log(store: &dyn IncidentStore) {
    let now = Utc::now();
    assert_eq!(store.intake_processed().unwrap(), None);
    let a = Alert::firing("A").with_label("namespace", "ns");
    let b = Alert::firing("B").with_label("namespace", "ns");
    assert_eq!(
        store.accept_alerts(now, &[a.clone(), b.clone()]).unwrap(),
        vec![0, 1]
    );
    assert_eq!(
        store.accept_alerts(now, std::slice::from_ref(&a)).unwrap(),
        vec![2]
    );
    let all = store.accepted_after(None, 10).unwrap();
    assert_eq!(all.iter().map(|x| x.seq).collect::<Vec<_>>(), vec![0, 1, 2]);
    assert_eq!(all[1].alert, b);
    store.set_intake_processed(1).unwrap();
    assert_eq!(store.intake_processed().unwrap(), Some(1));
    let rest = store.accepted_after(Some(1), 10).unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].alert, a);
    assert_eq!(store.accepted_after(None, 2).unwrap().len(), 2);
    assert!(store.accept_alerts(now, &[]).unwrap().is_empty());
}

/// Writers at once (threads here; replicas on a shared store): appends to one incident get
/// every seq once, with no gap, and accepted alerts every intake seq once, each batch in one
/// run, and a reader that saw seq `n` never later sees a smaller one appear (else a watermark
/// past it would skip an accepted alert).
pub fn concurrent_writers_number_without_gaps_or_late_arrivals(store: Arc<dyn IncidentStore>) {
    const WRITERS: usize = 4;
    const EACH: usize = 25;
    let id = IncidentId("inc-shared".into());
    let mut threads = Vec::new();
    for w in 0..WRITERS {
        let (store, id) = (store.clone(), id.clone());
        threads.push(std::thread::spawn(move || {
            let mut seqs = Vec::new();
            for i in 0..EACH {
                let text = format!("writer {w} note {i}");
                let e = store
                    .append(&id, Utc::now(), Author::System, EventKind::Note { text })
                    .unwrap();
                seqs.push(e.seq);
                let batch = [
                    Alert::firing(format!("W{w}-{i}-a")).with_label("namespace", "ns"),
                    Alert::firing(format!("W{w}-{i}-b")).with_label("namespace", "ns"),
                ];
                let got = store.accept_alerts(Utc::now(), &batch).unwrap();
                assert_eq!(got.len(), 2);
                assert_eq!(got[1], got[0] + 1, "a batch is numbered in one run");
            }
            seqs
        }));
    }
    // A reader following the intake log as the daemon's intake does.
    let reader = {
        let store = store.clone();
        std::thread::spawn(move || {
            let mut seen: Option<u64> = None;
            let mut count = 0;
            while count < WRITERS * EACH * 2 {
                for acc in store.accepted_after(seen, 100).unwrap() {
                    assert!(
                        seen.is_none_or(|s| acc.seq == s + 1),
                        "after seq {seen:?} the log showed {} (an alert committed late, or a gap)",
                        acc.seq
                    );
                    seen = Some(acc.seq);
                    count += 1;
                }
            }
            count
        })
    };
    let mut all: Vec<u64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    all.sort_unstable();
    let want: Vec<u64> = (0..(WRITERS * EACH) as u64).collect();
    assert_eq!(all, want, "every seq once, no gap");
    assert_eq!(reader.join().unwrap(), WRITERS * EACH * 2);
    let events = store.events(&id).unwrap();
    assert!(events.iter().enumerate().all(|(i, e)| e.seq == i as u64));
}

/// For a store replicas share: a fenced write commits only under its lease's latest tenure.
/// Before any tenure is raised, after another replica raised a later one, and for this
/// replica's own earlier tenure, the write is `Fenced` and nothing is written; the latest
/// tenure's writes (appends and the intake watermark) commit.
pub fn refuses_an_earlier_tenure(store: &dyn IncidentStore) {
    let inc = IncidentId("inc-fenced".into());
    let now = Utc::now();
    let tenure = |holder: &str, epoch: u64| Fence {
        lease: "shard-3".into(),
        holder: holder.into(),
        epoch,
    };
    let fenced = |r: Result<_, StoreError>, what: &str| {
        assert!(
            matches!(r, Err(StoreError::Fenced { ref lease, .. }) if lease == "shard-3"),
            "{what}: expected Fenced on shard-3, got {r:?}"
        );
    };
    fenced(
        store.append_fenced(&tenure("a", 1), &inc, now, Author::System, opened()),
        "a write before any tenure was raised",
    );
    store.raise_fence(&tenure("a", 1)).unwrap();
    store
        .append_fenced(&tenure("a", 1), &inc, now, Author::System, opened())
        .unwrap();
    // b takes the lease over (a later tenure); a's writes stop, b's go on.
    store.raise_fence(&tenure("b", 2)).unwrap();
    let note = || EventKind::Note { text: "x".into() };
    fenced(
        store.append_fenced(&tenure("a", 1), &inc, now, Author::Belanna, note()),
        "the former holder's append",
    );
    assert_eq!(
        store
            .append_fenced(&tenure("b", 2), &inc, now, Author::Belanna, note())
            .unwrap()
            .seq,
        1
    );
    // a takes it back: its tenure before b's stays refused.
    store.raise_fence(&tenure("a", 3)).unwrap();
    fenced(
        store.append_fenced(&tenure("a", 1), &inc, now, Author::Belanna, note()),
        "the holder's own earlier tenure",
    );
    fenced(
        store.append_fenced(&tenure("b", 2), &inc, now, Author::Belanna, note()),
        "b after a took the lease back",
    );
    assert_eq!(
        store.events(&inc).unwrap().len(),
        2,
        "refused writes left nothing"
    );
    // The intake watermark, under the intake lease.
    let intake = Fence {
        lease: "intake".into(),
        holder: "a".into(),
        epoch: 1,
    };
    store.raise_fence(&intake).unwrap();
    store.set_intake_processed_fenced(&intake, 4).unwrap();
    store
        .raise_fence(&Fence {
            holder: "b".into(),
            epoch: 2,
            ..intake.clone()
        })
        .unwrap();
    assert!(matches!(
        store.set_intake_processed_fenced(&intake, 9),
        Err(StoreError::Fenced { .. })
    ));
    assert_eq!(store.intake_processed().unwrap(), Some(4));
}
