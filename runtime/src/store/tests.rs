#![allow(clippy::unwrap_used)]
use super::*;
use squad_protocols::Alert;
use std::sync::Arc;

#[test]
fn both_stores_number_concurrent_writers_without_gaps() {
    contract::concurrent_writers_number_without_gaps_or_late_arrivals(Arc::new(MemoryStore::new()));
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(&dir.path().join("incidents.redb")).unwrap();
    contract::concurrent_writers_number_without_gaps_or_late_arrivals(Arc::new(store));
}

#[test]
fn memory_store_appends_in_order() {
    contract::appends_in_order(&MemoryStore::new());
}

#[cfg(unix)]
#[test]
fn the_store_file_is_its_owners_alone_whatever_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("incidents.redb");
    // Made readable by all first, as a permissive umask would leave it.
    drop(RedbStore::open(&path).unwrap());
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    drop(RedbStore::open(&path).unwrap());
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{mode:o}");
}

#[test]
fn redb_store_appends_in_order_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data/incidents.redb");
    {
        let store = RedbStore::open(&path).unwrap();
        contract::appends_in_order(&store);
    }
    let store = RedbStore::open(&path).unwrap();
    let a = IncidentId("inc-a".into());
    assert_eq!(store.events(&a).unwrap().len(), 2);
    assert_eq!(
        store
            .append(
                &a,
                Utc::now(),
                Author::Ralph,
                EventKind::Note { text: "y".into() }
            )
            .unwrap()
            .seq,
        2
    );
    assert_eq!(store.incident_ids().unwrap().len(), 2);
}

#[test]
fn a_store_from_before_the_intake_log_moves_its_unprocessed_alerts_into_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("incidents.redb");
    let at = Utc::now();
    let alert = |i: u64| Alert::firing("KubeHpaMaxedOut").with_label("namespace", format!("n{i}"));
    {
        // As an earlier squad left it: five alerts in its `intake` table, two processed.
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut table = txn.open_table(INTAKE).unwrap();
            for seq in 0..5 {
                let row = Accepted {
                    seq,
                    at,
                    alert: alert(seq),
                };
                table
                    .insert(seq, serde_json::to_vec(&row).unwrap().as_slice())
                    .unwrap();
            }
            txn.open_table(META)
                .unwrap()
                .insert("intake_processed", 1)
                .unwrap();
        }
        txn.commit().unwrap();
    }
    let seqs = |s: &RedbStore| -> Vec<u64> {
        s.accepted_after(None, 100)
            .unwrap()
            .iter()
            .map(|a| a.seq)
            .collect()
    };
    {
        let store = RedbStore::open(&path).unwrap();
        assert_eq!(seqs(&store), vec![2, 3, 4]);
        assert_eq!(store.accepted_after(Some(3), 1).unwrap()[0].alert, alert(4));
        assert_eq!(store.accept_alerts(at, &[alert(9)]).unwrap(), vec![5]);
        let txn = store.db.begin_read().unwrap();
        assert_eq!(txn.open_table(INTAKE).unwrap().len().unwrap(), 0);
    }
    let store = RedbStore::open(&path).unwrap();
    assert_eq!(seqs(&store), vec![2, 3, 4, 5]);
    assert_eq!(store.intake_processed().unwrap(), Some(1));
}

#[test]
fn both_stores_keep_the_intake_log_in_order_with_a_watermark() {
    contract::keeps_the_intake_log(&MemoryStore::new());
    contract::refuses_an_earlier_tenure(&MemoryStore::new());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("incidents.redb");
    {
        contract::keeps_the_intake_log(&RedbStore::open(&path).unwrap());
    }
    // Durable: the log and the watermark survive a reopen, and numbering continues.
    let store = RedbStore::open(&path).unwrap();
    assert_eq!(store.intake_processed().unwrap(), Some(1));
    assert_eq!(store.accepted_after(None, 10).unwrap().len(), 3);
    let a = Alert::firing("C").with_label("namespace", "ns");
    assert_eq!(store.accept_alerts(Utc::now(), &[a]).unwrap(), vec![3]);
}
