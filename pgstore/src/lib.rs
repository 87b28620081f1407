//! squad's incident store on PostgreSQL (`[store] url = "postgres://…"`), so that two or more
//! replicas share one intake log, one set of incidents and one journal.
//!
//! The same contract as the embedded redb store (`squad_runtime::store::contract`): every append
//! and every accepted alert is committed (`synchronous_commit` as the server sets it, `on` by
//! default: the WAL is flushed) before the call returns. Writers on other connections or other
//! replicas are numbered without gaps: an incident's next seq is taken by an upsert of its row,
//! which holds the row's lock until the commit; accepted alerts take a transaction-scoped advisory
//! lock, so they become visible in the order of their seqs and a reader past seq `n` never sees a
//! smaller one appear later.
//!
//! [`IncidentStore`] is synchronous (redb is), and sqlx is async: the store runs its pool on a
//! runtime of its own (one worker thread), and each call waits for its query there. A call from
//! async code blocks its thread for one round trip, as a redb commit blocks it for an fsync.
//! Subscribers hear every replica's appends: each append sends a notice (`pg_notify` on the
//! `squad_events` channel, delivered at its commit) that the other stores read back and publish.
//! A notice lost while a listener reconnects is not replayed; readers that must not miss an
//! event also look at the store now and then.

use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Connection, PgConnection, Postgres, Row, Transaction};
use squad_protocols::{Alert, Author, EventKind, IncidentEvent, IncidentId};
use squad_runtime::store::{Accepted, Fence, IncidentStore, StoreError};
use tokio::sync::broadcast;

/// The schema, created once (under an advisory lock, so replicas starting together do not race).
const SCHEMA: [&str; 5] = [
    "CREATE TABLE IF NOT EXISTS squad_incidents (
        id TEXT PRIMARY KEY,
        opened BIGINT GENERATED ALWAYS AS IDENTITY,
        next_seq BIGINT NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS squad_events (
        incident TEXT NOT NULL REFERENCES squad_incidents (id),
        seq BIGINT NOT NULL,
        event TEXT NOT NULL,
        PRIMARY KEY (incident, seq)
    )",
    "CREATE TABLE IF NOT EXISTS squad_intake (
        seq BIGINT PRIMARY KEY,
        accepted TEXT NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS squad_meta (
        key TEXT PRIMARY KEY,
        value BIGINT NOT NULL
    )",
    // Each lease's latest tenure, as its holder raised it; fenced writes check it.
    "CREATE TABLE IF NOT EXISTS squad_fences (
        lease TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        epoch BIGINT NOT NULL
    )",
];
/// The schema's version, in `squad_meta`; a store newer than this build refuses to open.
const SCHEMA_VERSION: i64 = 1;
/// Advisory lock keys (any two constants of squad's own).
const SCHEMA_LOCK: i64 = 0x5155_4144_0001;
const INTAKE_LOCK: i64 = 0x5155_4144_0002;

/// Connections per replica: the crew's members, the intake and the API read at once.
const MAX_CONNECTIONS: u32 = 8;
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

pub struct PgStore {
    pool: PgPool,
    /// Runs the pool; `None` once dropped.
    runtime: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
    /// The URL without its password, for errors.
    shown: String,
    tx: broadcast::Sender<IncidentEvent>,
    /// This store's name in notices, so it skips its own.
    instance: String,
}

/// The channel appends are announced on.
const CHANNEL: &str = "squad_events";

/// `url` with its password replaced by `***`.
pub fn redacted_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

impl PgStore {
    /// Connects to `url` (`postgres://user[:password]@host[:port]/database[?sslmode=…]`; the
    /// password may also come from `PGPASSWORD`), and creates the schema if it is not there.
    pub fn connect(url: &str) -> Result<PgStore, StoreError> {
        let shown = redacted_url(url);
        let fail = |message: String| StoreError::Backend {
            path: shown.clone(),
            message,
        };
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(fail(
                "store.url: expected postgres://user[:password]@host[:port]/database".into(),
            ));
        }
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| fail(format!("store.url is not a PostgreSQL URL: {e}")))?
            .application_name("squad");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("squad-pgstore")
            .enable_all()
            .build()
            .map_err(|e| fail(format!("cannot start the store's runtime: {e}")))?;
        let handle = runtime.handle().clone();
        let pool = wait(&handle, async move {
            // One connection first: its error says why (refused, auth, no such database), where
            // the pool's would only say that it timed out.
            PgConnection::connect_with(&options).await?.close().await?;
            PgPoolOptions::new()
                .max_connections(MAX_CONNECTIONS)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect_with(options)
                .await
        })
        .map_err(|e| fail(format!("cannot connect: {e}")))
        .and_then(|r| r.map_err(|e| fail(format!("cannot connect: {e}"))))?;
        let instance = format!(
            "{}-{}",
            std::process::id(),
            STORES.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let store = PgStore {
            pool,
            runtime: Some(runtime),
            handle,
            shown: shown.clone(),
            tx: broadcast::channel(1024).0,
            instance,
        };
        store.run(|pool| async move { create_schema(&pool).await })?;
        let (pool, tx, me) = (store.pool.clone(), store.tx.clone(), store.instance.clone());
        store.handle.spawn(listen(pool, tx, me));
        Ok(store)
    }

    fn err(&self, e: impl std::fmt::Display) -> StoreError {
        StoreError::Backend {
            path: self.shown.clone(),
            message: e.to_string(),
        }
    }

    /// Runs `f` on the store's runtime with the pool, and waits for it.
    fn run<T, F, Fut>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(PgPool) -> Fut,
        Fut: Future<Output = Result<T, StoreError>> + Send + 'static,
        T: Send + 'static,
    {
        let fut = f(self.pool.clone());
        match wait(&self.handle, fut).map_err(|e| self.err(e))? {
            // Named by this store's URL (without its password).
            Err(StoreError::Backend { message, .. }) => Err(self.err(message)),
            other => other,
        }
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        // Dropping a runtime inside async code panics; this lets its thread finish on its own.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// Spawns `fut` on `handle` and blocks this thread until it is done (a std channel, not
/// `block_on`, so any thread may call it, in async code or not).
fn wait<T: Send + 'static>(
    handle: &tokio::runtime::Handle,
    fut: impl Future<Output = T> + Send + 'static,
) -> Result<T, &'static str> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    handle.spawn(async move {
        let _ = tx.send(fut.await);
    });
    rx.recv()
        .map_err(|_| "the store's runtime stopped before answering")
}

static STORES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Reads other stores' notices and publishes their events here. `PgListener` reconnects by
/// itself when its connection drops.
async fn listen(pool: PgPool, tx: broadcast::Sender<IncidentEvent>, me: String) {
    let mut listener = loop {
        match sqlx::postgres::PgListener::connect_with(&pool).await {
            Ok(mut l) => match l.listen(CHANNEL).await {
                Ok(()) => break l,
                Err(e) => tracing::warn!("store notices: cannot listen: {e}"),
            },
            Err(e) => tracing::warn!("store notices: cannot connect: {e}"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    loop {
        let notice = match listener.recv().await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!("store notices: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let mut parts = notice.payload().splitn(3, ' ');
        let (Some(from), Some(seq), Some(incident)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if from == me {
            continue;
        }
        let Ok(seq) = seq.parse::<i64>() else {
            continue;
        };
        let text: Result<Option<String>, _> =
            sqlx::query_scalar("SELECT event FROM squad_events WHERE incident = $1 AND seq = $2")
                .bind(incident)
                .bind(seq)
                .fetch_optional(&pool)
                .await;
        if let Ok(Some(text)) = text
            && let Ok(event) = serde_json::from_str::<IncidentEvent>(&text)
        {
            let _ = tx.send(event);
        }
    }
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend {
        path: "postgres".into(),
        message: e.to_string(),
    }
}

async fn create_schema(pool: &PgPool) -> Result<(), StoreError> {
    let mut tx = pool.begin().await.map_err(backend)?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(SCHEMA_LOCK)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
    for ddl in SCHEMA {
        sqlx::query(ddl).execute(&mut *tx).await.map_err(backend)?;
    }
    let version: Option<i64> =
        sqlx::query_scalar("SELECT value FROM squad_meta WHERE key = 'schema'")
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?;
    match version {
        Some(v) if v > SCHEMA_VERSION => {
            return Err(backend(format!(
                "the database holds squad's schema version {v}, newer than this build's {SCHEMA_VERSION}: upgrade squad"
            )));
        }
        Some(_) => {}
        None => {
            sqlx::query("INSERT INTO squad_meta (key, value) VALUES ('schema', $1)")
                .bind(SCHEMA_VERSION)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
        }
    }
    tx.commit().await.map_err(backend)
}

async fn set_processed(conn: &mut PgConnection, seq: i64) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO squad_meta (key, value) VALUES ('intake_processed', $1)
         ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
    )
    .bind(seq)
    .execute(conn)
    .await
    .map_err(backend)?;
    Ok(())
}

fn seq_of(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn db_seq(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| backend(format!("seq {v} is past PostgreSQL's BIGINT")))
}

async fn append_in(
    tx: &mut Transaction<'static, Postgres>,
    instance: &str,
    incident: &IncidentId,
    at: DateTime<Utc>,
    author: Author,
    kind: EventKind,
) -> Result<IncidentEvent, StoreError> {
    let seq: i64 = sqlx::query_scalar(
        "INSERT INTO squad_incidents (id, next_seq) VALUES ($1, 1)
         ON CONFLICT (id) DO UPDATE SET next_seq = squad_incidents.next_seq + 1
         RETURNING next_seq - 1",
    )
    .bind(incident.as_str())
    .fetch_one(&mut **tx)
    .await
    .map_err(backend)?;
    let event = IncidentEvent {
        incident: incident.clone(),
        seq: seq_of(seq),
        at,
        author,
        kind,
    };
    let text = serde_json::to_string(&event).map_err(backend)?;
    sqlx::query("INSERT INTO squad_events (incident, seq, event) VALUES ($1, $2, $3)")
        .bind(incident.as_str())
        .bind(seq)
        .bind(text)
        .execute(&mut **tx)
        .await
        .map_err(backend)?;
    // Delivered to the listeners when this transaction commits, not before.
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(format!("{instance} {seq} {}", incident.as_str()))
        .execute(&mut **tx)
        .await
        .map_err(backend)?;
    Ok(event)
}

/// Holds `fence`'s lease row (shared) until the transaction ends, and refuses unless the fence
/// is the lease's latest tenure: a tenure raised later (another replica took the lease) waits
/// for this write to commit, or this write sees it and is refused.
async fn check_fence(
    tx: &mut Transaction<'static, Postgres>,
    fence: &Fence,
    incident: &IncidentId,
) -> Result<(), StoreError> {
    let latest: Option<(String, i64)> =
        sqlx::query_as("SELECT holder, epoch FROM squad_fences WHERE lease = $1 FOR SHARE")
            .bind(&fence.lease)
            .fetch_optional(&mut **tx)
            .await
            .map_err(backend)?;
    match latest {
        Some((holder, epoch)) if holder == fence.holder && seq_of(epoch) == fence.epoch => Ok(()),
        _ => Err(StoreError::Fenced {
            incident: incident.clone(),
            lease: fence.lease.clone(),
        }),
    }
}

impl PgStore {
    /// One append in its own transaction, under `fence` when given.
    fn append_under(
        &self,
        fence: Option<&Fence>,
        incident: &IncidentId,
        at: DateTime<Utc>,
        author: Author,
        kind: EventKind,
    ) -> Result<IncidentEvent, StoreError> {
        let (incident, instance, fence) = (incident.clone(), self.instance.clone(), fence.cloned());
        let event = self.run(|pool| async move {
            let mut tx = pool.begin().await.map_err(backend)?;
            if let Some(fence) = &fence {
                check_fence(&mut tx, fence, &incident).await?;
            }
            let event = append_in(&mut tx, &instance, &incident, at, author, kind).await?;
            tx.commit().await.map_err(backend)?;
            Ok(event)
        })?;
        let _ = self.tx.send(event.clone());
        Ok(event)
    }
}

impl IncidentStore for PgStore {
    fn raise_fence(&self, fence: &Fence) -> Result<(), StoreError> {
        let fence = fence.clone();
        let epoch = db_seq(fence.epoch)?;
        self.run(|pool| async move {
            sqlx::query(
                "INSERT INTO squad_fences (lease, holder, epoch) VALUES ($1, $2, $3)
                 ON CONFLICT (lease) DO UPDATE SET holder = EXCLUDED.holder, epoch = EXCLUDED.epoch
                 WHERE (squad_fences.holder, squad_fences.epoch)
                       IS DISTINCT FROM (EXCLUDED.holder, EXCLUDED.epoch)",
            )
            .bind(&fence.lease)
            .bind(&fence.holder)
            .bind(epoch)
            .execute(&pool)
            .await
            .map_err(backend)?;
            Ok(())
        })
    }

    fn append_fenced(
        &self,
        fence: &Fence,
        incident: &IncidentId,
        at: DateTime<Utc>,
        author: Author,
        kind: EventKind,
    ) -> Result<IncidentEvent, StoreError> {
        self.append_under(Some(fence), incident, at, author, kind)
    }

    fn set_intake_processed_fenced(&self, fence: &Fence, seq: u64) -> Result<(), StoreError> {
        let seq = db_seq(seq)?;
        let fence = fence.clone();
        self.run(|pool| async move {
            let mut tx = pool.begin().await.map_err(backend)?;
            check_fence(&mut tx, &fence, &IncidentId("intake".into())).await?;
            set_processed(&mut tx, seq).await?;
            tx.commit().await.map_err(backend)
        })
    }

    fn append(
        &self,
        incident: &IncidentId,
        at: DateTime<Utc>,
        author: Author,
        kind: EventKind,
    ) -> Result<IncidentEvent, StoreError> {
        self.append_under(None, incident, at, author, kind)
    }

    fn events(&self, incident: &IncidentId) -> Result<Vec<IncidentEvent>, StoreError> {
        let id = incident.clone();
        self.run(|pool| async move {
            let rows =
                sqlx::query("SELECT seq, event FROM squad_events WHERE incident = $1 ORDER BY seq")
                    .bind(id.as_str())
                    .fetch_all(&pool)
                    .await
                    .map_err(backend)?;
            rows.iter()
                .map(|row| {
                    let seq: i64 = row.try_get(0).map_err(backend)?;
                    let text: String = row.try_get(1).map_err(backend)?;
                    serde_json::from_str(&text).map_err(|e| StoreError::Corrupt {
                        incident: id.clone(),
                        seq: seq_of(seq),
                        message: e.to_string(),
                    })
                })
                .collect()
        })
    }

    fn incident_ids(&self) -> Result<Vec<IncidentId>, StoreError> {
        self.run(|pool| async move {
            let ids: Vec<String> =
                sqlx::query_scalar("SELECT id FROM squad_incidents ORDER BY opened")
                    .fetch_all(&pool)
                    .await
                    .map_err(backend)?;
            Ok(ids.into_iter().map(IncidentId).collect())
        })
    }

    fn subscribe(&self) -> broadcast::Receiver<IncidentEvent> {
        self.tx.subscribe()
    }

    fn accept_alerts(&self, at: DateTime<Utc>, alerts: &[Alert]) -> Result<Vec<u64>, StoreError> {
        if alerts.is_empty() {
            return Ok(Vec::new());
        }
        let alerts = alerts.to_vec();
        self.run(|pool| async move {
            let mut tx = pool.begin().await.map_err(backend)?;
            // One writer at a time from here to the commit: seqs become visible in order.
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(INTAKE_LOCK)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
            let next: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq) + 1, 0) FROM squad_intake")
                .fetch_one(&mut *tx)
                .await
                .map_err(backend)?;
            let first = seq_of(next);
            let mut seqs = Vec::with_capacity(alerts.len());
            let mut texts = Vec::with_capacity(alerts.len());
            let mut keys = Vec::with_capacity(alerts.len());
            for (seq, alert) in (first..).zip(alerts) {
                let record = Accepted { seq, at, alert };
                texts.push(serde_json::to_string(&record).map_err(backend)?);
                keys.push(db_seq(seq)?);
                seqs.push(seq);
            }
            sqlx::query(
                "INSERT INTO squad_intake (seq, accepted) SELECT * FROM UNNEST($1::BIGINT[], $2::TEXT[])",
            )
            .bind(keys)
            .bind(texts)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
            tx.commit().await.map_err(backend)?;
            Ok(seqs)
        })
    }

    fn accepted_after(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<Accepted>, StoreError> {
        let after = match after {
            Some(a) => db_seq(a)?,
            None => -1,
        };
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.run(|pool| async move {
            let texts: Vec<String> = sqlx::query_scalar(
                "SELECT accepted FROM squad_intake WHERE seq > $1 ORDER BY seq LIMIT $2",
            )
            .bind(after)
            .bind(limit)
            .fetch_all(&pool)
            .await
            .map_err(backend)?;
            texts
                .iter()
                .map(|t| serde_json::from_str(t).map_err(backend))
                .collect()
        })
    }

    fn intake_processed(&self) -> Result<Option<u64>, StoreError> {
        self.run(|pool| async move {
            let v: Option<i64> =
                sqlx::query_scalar("SELECT value FROM squad_meta WHERE key = 'intake_processed'")
                    .fetch_optional(&pool)
                    .await
                    .map_err(backend)?;
            Ok(v.map(seq_of))
        })
    }

    fn set_intake_processed(&self, seq: u64) -> Result<(), StoreError> {
        let seq = db_seq(seq)?;
        self.run(|pool| async move {
            let mut conn = pool.acquire().await.map_err(backend)?;
            set_processed(&mut conn, seq).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::redacted_url;

    #[test]
    fn a_urls_password_never_shows() {
        for (url, shown) in [
            (
                "postgres://squad:s3cret@db.example:5432/squad?sslmode=require",
                "postgres://squad:***@db.example:5432/squad?sslmode=require",
            ),
            (
                "postgres://squad@127.0.0.1/squad",
                "postgres://squad@127.0.0.1/squad",
            ),
            ("postgres://a:b:c@h/d", "postgres://a:***@h/d"),
            ("postgresql://u:p%40ss@h", "postgresql://u:***@h"),
            ("not a url", "not a url"),
        ] {
            assert_eq!(redacted_url(url), shown);
        }
    }
}
