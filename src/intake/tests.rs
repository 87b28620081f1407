#![allow(clippy::unwrap_used)]
use super::*;

#[test]
fn the_processor_takes_handed_alerts_only_from_the_seq_it_needs() {
    let handed = Handed::default();
    let accepted = |seq| squad_runtime::Accepted {
        seq,
        at: chrono::Utc::now(),
        alert: Alert::firing("A"),
    };
    handed.push([3, 4, 5, 6].into_iter().map(accepted));
    // It needs seq 2, which is not here (another replica's, or read before): the store.
    assert!(handed.take_from(2, 10).is_none());
    // Older ones are dropped, and no more than asked for is taken.
    let seqs = |v: Vec<squad_runtime::Accepted>| v.iter().map(|a| a.seq).collect::<Vec<_>>();
    assert_eq!(seqs(handed.take_from(4, 2).unwrap()), vec![4, 5]);
    assert_eq!(seqs(handed.take_from(6, 10).unwrap()), vec![6]);
    assert!(handed.take_from(7, 10).is_none());
    // Past its bound, the rest is left to the store.
    handed.push((7..7 + HANDED_MAX as u64 + 5).map(accepted));
    assert_eq!(handed.take_from(7, usize::MAX).unwrap().len(), HANDED_MAX);
    assert!(handed.take_from(7 + HANDED_MAX as u64, 10).is_none());
}

/// A store whose staged batches come back from `make_durable` with the outcomes given.
struct Outcomes(squad_runtime::MemoryStore, Vec<bool>);

impl IncidentStore for Outcomes {
    fn append(
        &self,
        incident: &IncidentId,
        at: chrono::DateTime<chrono::Utc>,
        author: Author,
        kind: EventKind,
    ) -> Result<squad_protocols::IncidentEvent, squad_runtime::StoreError> {
        self.0.append(incident, at, author, kind)
    }
    fn events(
        &self,
        incident: &IncidentId,
    ) -> Result<Vec<squad_protocols::IncidentEvent>, squad_runtime::StoreError> {
        self.0.events(incident)
    }
    fn incident_ids(&self) -> Result<Vec<IncidentId>, squad_runtime::StoreError> {
        self.0.incident_ids()
    }
    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<squad_protocols::IncidentEvent> {
        self.0.subscribe()
    }
    fn accept_alerts(
        &self,
        at: chrono::DateTime<chrono::Utc>,
        alerts: &[Alert],
    ) -> Result<Vec<u64>, squad_runtime::StoreError> {
        self.0.accept_alerts(at, alerts)
    }
    fn accepted_after(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<squad_runtime::Accepted>, squad_runtime::StoreError> {
        self.0.accepted_after(after, limit)
    }
    fn intake_processed(&self) -> Result<Option<u64>, squad_runtime::StoreError> {
        self.0.intake_processed()
    }
    fn set_intake_processed(&self, seq: u64) -> Result<(), squad_runtime::StoreError> {
        self.0.set_intake_processed(seq)
    }
    fn make_durable(&self, tickets: &[u64]) -> Vec<Result<(), squad_runtime::StoreError>> {
        tickets
            .iter()
            .map(|&t| match self.1[t as usize] {
                true => Ok(()),
                false => Err(squad_runtime::StoreError::Backend {
                    path: "intake".into(),
                    message: "fdatasync: EIO".into(),
                }),
            })
            .collect()
    }
}

#[test]
fn the_syncer_answers_each_submission_with_its_own_seqs_or_the_failure() {
    let store = Outcomes(squad_runtime::MemoryStore::new(), vec![true, false]);
    let (stats, wake, handed) = (IntakeStats::default(), Notify::new(), Handed::default());
    let at = chrono::Utc::now();
    let mut answers = Vec::new();
    let mut flight = |ticket: u64, counts: Vec<usize>, first: u64| {
        let n: usize = counts.iter().sum();
        let submissions = counts
            .iter()
            .map(|_| {
                let (reply, rx) = oneshot::channel();
                answers.push(rx);
                Submission {
                    alerts: Vec::new(),
                    at,
                    reply,
                }
            })
            .collect();
        InFlight {
            submissions,
            counts,
            alerts: (0..n).map(|i| Alert::firing(format!("A{i}"))).collect(),
            at,
            staged: squad_runtime::StagedAlerts {
                seqs: (first..first + n as u64).collect(),
                ticket: Some(ticket),
            },
        }
    };
    // Ticket 0 (two submissions, of 2 and 1 alerts) is durable; ticket 1 is not.
    let flights = vec![flight(0, vec![2, 1], 10), flight(1, vec![3], 13)];
    settle(flights, &store, &stats, &wake, &handed);
    let got: Vec<Result<Vec<u64>, String>> = answers
        .into_iter()
        .map(|mut rx| rx.try_recv().unwrap())
        .collect();
    assert_eq!(got[0], Ok(vec![10, 11]));
    assert_eq!(got[1], Ok(vec![12]));
    let e = got[2].clone().unwrap_err();
    assert!(
        e.contains("could not be stored") && e.contains("EIO"),
        "{e}"
    );
    assert_eq!(stats.accepted.load(Ordering::Relaxed), 3);
    // Only the durable alerts go to the processor.
    let seqs: Vec<u64> = handed
        .take_from(10, 100)
        .unwrap()
        .iter()
        .map(|a| a.seq)
        .collect();
    assert_eq!(seqs, vec![10, 11, 12]);
    assert!(handed.take_from(13, 100).is_none());
}

#[test]
fn group_keys_follow_the_group_key_then_the_workload() {
    let a = Alert::firing("KubernetesPodOOMKilled")
        .with_label("namespace", "production")
        .with_label("pod", "payment-service-7d4b9c-xk2p");
    let b = Alert::firing("KubernetesPodOOMKilled")
        .with_label("namespace", "production")
        .with_label("pod", "payment-service-7d4b9c-m2v7q");
    assert_eq!(group_key(&a, &[]), group_key(&b, &[]));
    assert_eq!(
        group_key(&a, &[]),
        "alertname=KubernetesPodOOMKilled,namespace=production,workload=payment-service"
    );
    let mut g = a.clone();
    g.group_key = Some("{}:{alertname=\"X\"}".into());
    assert_eq!(group_key(&g, &[]), "group:{}:{alertname=\"X\"}");
    let by = vec!["alertname".to_owned(), "pod".to_owned()];
    assert_ne!(group_key(&a, &by), group_key(&b, &by));
    // Two failed Jobs of a namespace are two incidents, not one.
    let job = |name: &str| {
        Alert::firing("KubeJobFailed")
            .with_label("namespace", "batch")
            .with_label("job_name", name)
    };
    assert_eq!(
        group_key(&job("nightly-report-29412345"), &[]),
        "alertname=KubeJobFailed,namespace=batch,workload=job/nightly-report-29412345"
    );
    assert_ne!(group_key(&job("a-1"), &[]), group_key(&job("b-1"), &[]));
}
