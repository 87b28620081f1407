#![allow(clippy::unwrap_used, clippy::panic)]

use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use super::*;

/// An adapter that counts how many calls run at once, and panics when asked to.
#[derive(Default)]
struct Flaky {
    running: AtomicUsize,
    most: AtomicUsize,
}

impl Flaky {
    async fn work(&self, panic: bool) -> PortResult<u32> {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(50)).await;
        self.running.fetch_sub(1, Ordering::SeqCst);
        if panic {
            panic!("the adapter hit a bug");
        }
        Ok(7)
    }
}

/// A supervisor that only holds its children.
struct Holder;

impl Actor for Holder {
    type Msg = ();
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<()>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        _: ActorRef<()>,
        _: SupervisionEvent,
        _: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        Ok(())
    }
}

async fn started(workers: usize) -> (Adapter<Flaky>, Arc<Flaky>, ActorRef<()>) {
    let inner = Arc::new(Flaky::default());
    let (handle, spawner) = Adapter::new(AdapterSpec {
        name: "flaky".into(),
        inner: inner.clone(),
        workers,
    });
    let (holder, _) = Actor::spawn(None, Holder, ()).await.unwrap();
    spawner.spawn(holder.get_cell()).await.unwrap();
    (handle, inner, holder)
}

#[tokio::test]
async fn a_panicking_call_gets_a_typed_error_and_the_adapter_keeps_answering() {
    let (a, _, holder) = started(1).await;
    let err = a
        .call("work", |f| async move { f.work(true).await })
        .await
        .unwrap_err();
    assert!(
        matches!(&err, PortError::Unavailable { what, detail } if what == "work" && detail.contains("failed while answering")),
        "{err:?}"
    );
    // The worker was restarted: the next call is answered.
    assert_eq!(
        a.call("work", |f| async move { f.work(false).await })
            .await
            .unwrap(),
        7
    );
    let s = a.stats();
    assert_eq!(s.restarts.load(Ordering::SeqCst), 1);
    assert_eq!(s.completed.load(Ordering::SeqCst), 1);
    assert_eq!(s.in_flight.load(Ordering::SeqCst), 0);
    assert_eq!(s.queued.load(Ordering::SeqCst), 0);
    holder.stop(None);
}

#[tokio::test]
async fn calls_beyond_the_workers_queue_and_never_run_more_than_the_bound() {
    let (a, inner, holder) = started(2).await;
    let calls: Vec<_> = (0..6)
        .map(|_| {
            let a = a.clone();
            tokio::spawn(
                async move { a.call("work", |f| async move { f.work(false).await }).await },
            )
        })
        .collect();
    // While they run, some wait in the queue.
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(a.stats().queued.load(Ordering::SeqCst) >= 3);
    for c in calls {
        assert_eq!(c.await.unwrap().unwrap(), 7);
    }
    assert_eq!(inner.most.load(Ordering::SeqCst), 2);
    assert_eq!(a.stats().completed.load(Ordering::SeqCst), 6);
    holder.stop(None);
}

#[tokio::test]
async fn an_adapter_that_is_not_running_answers_unavailable() {
    let (handle, _spawner) = Adapter::new(AdapterSpec {
        name: "cluster".into(),
        inner: Arc::new(Flaky::default()),
        workers: 1,
    });
    let err = handle
        .call("get pod", |f| async move { f.work(false).await })
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("the cluster adapter is not running"),
        "{err}"
    );
}
