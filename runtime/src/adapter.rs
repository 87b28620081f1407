//! Adapters as supervised actors: the port a member calls is a handle to its adapter's actor.
//!
//! An [`AdapterPool`] is one adapter (the cluster, the forge, the diagnoser, a model) as an actor
//! that owns a fixed number of workers — its bound on concurrency — and a queue of the calls
//! waiting for one. A worker runs one call at a time, in its own handler: when the adapter
//! panics, the worker fails, the pool restarts it, and the caller whose call it was gets a typed
//! error ([`PortError::Unavailable`]) instead of an answer. The pool itself is a child of the
//! crew's supervisor. [`AdapterStats`] (calls queued, in flight, restarts) is what `/metrics`
//! shows. [`Adapter`] is the handle: it implements the port (`Cluster`, `Forge`, `Diagnoser`,
//! `Model`) by sending each call to the pool.

use std::collections::VecDeque;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, SpawnErr, SupervisionEvent};

use crate::minds::Model;
use crate::ports::{Cluster, Diagnoser, Forge, PortError, PortResult};

mod ports;

pub use ports::{DiagnoserAdapter, ForgeAdapter, ModelAdapter};

type Work = Pin<Box<dyn Future<Output = ()> + Send>>;
type Job<P> = Box<dyn FnOnce(Arc<P>) -> Work + Send>;

/// What an adapter did, for `/metrics`.
#[derive(Debug, Default)]
pub struct AdapterStats {
    /// Calls waiting for a worker.
    pub queued: AtomicU64,
    /// Calls a worker is running.
    pub in_flight: AtomicU64,
    /// Calls answered (or failed with the adapter's own error).
    pub completed: AtomicU64,
    /// Workers restarted after the adapter panicked.
    pub restarts: AtomicU64,
}

/// How an adapter runs.
pub struct AdapterSpec<P: ?Sized> {
    /// `cluster`, `forge`, `diagnoser`, `model:<profile>`: how logs and `/metrics` name it.
    pub name: String,
    pub inner: Arc<P>,
    /// Calls that may run at once.
    pub workers: usize,
}

impl<P: ?Sized> Clone for AdapterSpec<P> {
    fn clone(&self) -> Self {
        AdapterSpec {
            name: self.name.clone(),
            inner: self.inner.clone(),
            workers: self.workers,
        }
    }
}

/// The handle members call: the adapter's port, answered by its actor.
pub struct Adapter<P: ?Sized> {
    name: String,
    pool: Arc<RwLock<Option<ActorRef<PoolMsg<P>>>>>,
    stats: Arc<AdapterStats>,
}

impl<P: ?Sized> Clone for Adapter<P> {
    fn clone(&self) -> Self {
        Adapter {
            name: self.name.clone(),
            pool: self.pool.clone(),
            stats: self.stats.clone(),
        }
    }
}

impl<P: ?Sized + Send + Sync + 'static> Adapter<P> {
    /// A handle to an adapter that is not running yet: [`AdapterSpawner::spawn`] starts it (the
    /// crew supervisor does, and again after a restart).
    pub fn new(spec: AdapterSpec<P>) -> (Adapter<P>, Arc<dyn AdapterSpawner>) {
        let handle = Adapter {
            name: spec.name.clone(),
            pool: Arc::new(RwLock::new(None)),
            stats: Arc::new(AdapterStats::default()),
        };
        let spawner = Arc::new(Spawner {
            spec,
            handle: handle.clone(),
        });
        (handle, spawner)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn stats(&self) -> &Arc<AdapterStats> {
        &self.stats
    }

    /// Runs `call` on the adapter through its actor. `what` names the call in the error a caller
    /// gets when the adapter is not running or failed while answering.
    pub async fn call<T, F, Fut>(&self, what: &str, call: F) -> PortResult<T>
    where
        T: Send + 'static,
        F: FnOnce(Arc<P>) -> Fut + Send + 'static,
        Fut: Future<Output = PortResult<T>> + Send + 'static,
    {
        let unavailable = |detail: String| PortError::Unavailable {
            what: what.to_owned(),
            detail,
        };
        let pool = self
            .pool
            .read()
            .ok()
            .and_then(|p| p.clone())
            .ok_or_else(|| unavailable(format!("the {} adapter is not running", self.name)))?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job<P> = Box::new(move |inner| {
            Box::pin(async move {
                let _ = tx.send(call(inner).await);
            })
        });
        self.stats.queued.fetch_add(1, Ordering::Relaxed);
        if pool.send_message(PoolMsg::Call(job)).is_err() {
            self.stats.queued.fetch_sub(1, Ordering::Relaxed);
            return Err(unavailable(format!(
                "the {} adapter is not running",
                self.name
            )));
        }
        rx.await.unwrap_or_else(|_| {
            Err(unavailable(format!(
                "the {} adapter failed while answering and was restarted",
                self.name
            )))
        })
    }
}

/// Starts an adapter's actor under a supervisor.
#[async_trait::async_trait]
pub trait AdapterSpawner: Send + Sync {
    fn name(&self) -> &str;
    fn stats(&self) -> Arc<AdapterStats>;
    async fn spawn(&self, supervisor: ActorCell) -> Result<ActorCell, SpawnErr>;
}

struct Spawner<P: ?Sized> {
    spec: AdapterSpec<P>,
    handle: Adapter<P>,
}

#[async_trait::async_trait]
impl<P: ?Sized + Send + Sync + 'static> AdapterSpawner for Spawner<P> {
    fn name(&self) -> &str {
        &self.spec.name
    }

    fn stats(&self) -> Arc<AdapterStats> {
        self.handle.stats.clone()
    }

    async fn spawn(&self, supervisor: ActorCell) -> Result<ActorCell, SpawnErr> {
        let (pool, _) = Actor::spawn_linked(
            None,
            AdapterPool::<P>(PhantomData),
            PoolArgs {
                spec: self.spec.clone(),
                stats: self.handle.stats.clone(),
            },
            supervisor,
        )
        .await?;
        if let Ok(mut slot) = self.handle.pool.write() {
            *slot = Some(pool.clone());
        }
        Ok(pool.get_cell())
    }
}

/// An adapter's actor: its workers, and the calls waiting for one.
pub struct AdapterPool<P: ?Sized>(PhantomData<fn() -> Box<P>>);

pub enum PoolMsg<P: ?Sized> {
    Call(Job<P>),
    /// Worker `n` finished its call.
    Idle(usize),
    /// Worker `n` failed and is replaced.
    Replace(usize),
}

pub struct PoolArgs<P: ?Sized> {
    spec: AdapterSpec<P>,
    stats: Arc<AdapterStats>,
}

pub struct PoolState<P: ?Sized> {
    spec: AdapterSpec<P>,
    stats: Arc<AdapterStats>,
    workers: Vec<Option<ActorRef<WorkerMsg<P>>>>,
    idle: VecDeque<usize>,
    queue: VecDeque<Job<P>>,
}

impl<P: ?Sized + Send + Sync + 'static> PoolState<P> {
    async fn start_worker(
        &mut self,
        n: usize,
        myself: &ActorRef<PoolMsg<P>>,
    ) -> Result<(), SpawnErr> {
        let (worker, _) = Actor::spawn_linked(
            None,
            Worker::<P>(PhantomData),
            WorkerArgs {
                index: n,
                inner: self.spec.inner.clone(),
                pool: myself.clone(),
            },
            myself.get_cell(),
        )
        .await?;
        self.workers[n] = Some(worker);
        self.idle.push_back(n);
        Ok(())
    }

    fn dispatch(&mut self) {
        while !self.queue.is_empty() {
            let Some(n) = self.idle.pop_front() else {
                return;
            };
            let (Some(worker), Some(job)) = (self.workers[n].clone(), self.queue.pop_front())
            else {
                continue;
            };
            self.stats.queued.fetch_sub(1, Ordering::Relaxed);
            self.stats.in_flight.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = worker.send_message(WorkerMsg(job)) {
                // The worker is gone: the caller's reply is dropped with the job (a typed error).
                tracing::warn!(adapter = %self.spec.name, "worker {n} is gone: {e}");
                self.stats.in_flight.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
}

impl<P: ?Sized + Send + Sync + 'static> Actor for AdapterPool<P> {
    type Msg = PoolMsg<P>;
    type State = PoolState<P>;
    type Arguments = PoolArgs<P>;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: PoolArgs<P>,
    ) -> Result<Self::State, ActorProcessingErr> {
        let workers = args.spec.workers.max(1);
        let mut state = PoolState {
            spec: args.spec,
            stats: args.stats,
            workers: vec![None; workers],
            idle: VecDeque::new(),
            queue: VecDeque::new(),
        };
        for n in 0..workers {
            state.start_worker(n, &myself).await?;
        }
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            PoolMsg::Call(job) => state.queue.push_back(job),
            PoolMsg::Idle(n) => {
                state.stats.in_flight.fetch_sub(1, Ordering::Relaxed);
                state.stats.completed.fetch_add(1, Ordering::Relaxed);
                state.idle.push_back(n);
            }
            PoolMsg::Replace(n) => {
                if let Err(e) = state.start_worker(n, &myself).await {
                    tracing::error!(adapter = %state.spec.name, "cannot restart worker {n}: {e}");
                    myself.stop(Some(format!("worker {n} cannot be restarted: {e}")));
                }
            }
        }
        state.dispatch();
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        evt: SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let (cell, reason) = match evt {
            SupervisionEvent::ActorFailed(cell, err) => (cell, format!("failed: {err}")),
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                (cell, format!("stopped: {}", reason.unwrap_or_default()))
            }
            _ => return Ok(()),
        };
        let Some(n) = state
            .workers
            .iter()
            .position(|w| w.as_ref().is_some_and(|w| w.get_id() == cell.get_id()))
        else {
            return Ok(());
        };
        // Its call's reply went with it: that caller has its typed error already.
        state.workers[n] = None;
        state.idle.retain(|i| *i != n);
        state.stats.in_flight.fetch_sub(1, Ordering::Relaxed);
        state.stats.restarts.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(adapter = %state.spec.name, "worker {n} {reason}; restarting it");
        let _ = myself.send_message(PoolMsg::Replace(n));
        Ok(())
    }
}

struct Worker<P: ?Sized>(PhantomData<fn() -> Box<P>>);

struct WorkerMsg<P: ?Sized>(Job<P>);

struct WorkerArgs<P: ?Sized> {
    index: usize,
    inner: Arc<P>,
    pool: ActorRef<PoolMsg<P>>,
}

impl<P: ?Sized + Send + Sync + 'static> Actor for Worker<P> {
    type Msg = WorkerMsg<P>;
    type State = WorkerArgs<P>;
    type Arguments = WorkerArgs<P>;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: WorkerArgs<P>,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(args)
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        WorkerMsg(job): Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        // Awaited here, in the worker's own handler: a panic in the adapter fails this worker.
        job(state.inner.clone()).await;
        let _ = state.pool.send_message(PoolMsg::Idle(state.index));
        Ok(())
    }
}

/// The cluster behind an adapter actor with `workers` calls at once.
pub fn cluster(
    inner: Arc<dyn Cluster>,
    workers: usize,
) -> (Arc<dyn Cluster>, Arc<dyn AdapterSpawner>) {
    let (handle, spawner) = Adapter::new(AdapterSpec {
        name: "cluster".into(),
        inner,
        workers,
    });
    (Arc::new(handle), spawner)
}

/// A forge behind an adapter actor named `name` (`forge`, `app-repo`).
pub fn forge(
    name: &str,
    inner: Arc<dyn Forge>,
    workers: usize,
) -> (Arc<dyn Forge>, Arc<dyn AdapterSpawner>) {
    let repo = inner.repo();
    let (handle, spawner) = Adapter::new(AdapterSpec {
        name: name.into(),
        inner,
        workers,
    });
    (Arc::new(ForgeAdapter { handle, repo }), spawner)
}

/// The diagnoser behind an adapter actor.
pub fn diagnoser(
    inner: Arc<dyn Diagnoser>,
    workers: usize,
) -> (Arc<dyn Diagnoser>, Arc<dyn AdapterSpawner>) {
    let name = inner.name();
    let (handle, spawner) = Adapter::new(AdapterSpec {
        name: format!("diagnoser:{name}"),
        inner,
        workers,
    });
    (Arc::new(DiagnoserAdapter { handle, name }), spawner)
}

/// A model behind an adapter actor named after its profile.
pub fn model(inner: Arc<dyn Model>, workers: usize) -> (Arc<dyn Model>, Arc<dyn AdapterSpawner>) {
    let info = inner.info().clone();
    let (handle, spawner) = Adapter::new(AdapterSpec {
        name: format!("model:{}", info.profile),
        inner,
        workers,
    });
    (Arc::new(ModelAdapter { handle, info }), spawner)
}

#[cfg(test)]
mod tests;
