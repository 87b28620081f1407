//! Work that has to run on real time, even from a simulation's paused runtime: model calls and
//! HolmesGPT investigations.
//!
//! A paused tokio runtime that sits waiting on a socket or a child process jumps its clock to the
//! next timer: a timeout would fire at once and virtual hours would pass during one call. Here the
//! work runs on a small runtime of its own (real time), entered from a blocking task, which holds
//! the paused clock still until the work is done: the outside world's time is not the cluster's.
//! In the daemon (real time throughout) it costs one blocking-pool thread per call in flight.

use std::future::Future;
use std::sync::OnceLock;

/// The real-time runtime (two worker threads), started on first use.
fn runtime() -> Result<&'static tokio::runtime::Runtime, String> {
    static RT: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("squad-realtime")
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the real-time runtime: {e}"))
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// Runs `work` on real time and waits for it without letting a paused clock move.
pub async fn run<F, T>(work: F) -> Result<T, String>
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let handle = runtime()?.handle().clone();
    tokio::task::spawn_blocking(move || handle.block_on(work))
        .await
        .map_err(|e| format!("the work stopped: {e}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn a_paused_clock_holds_still_while_real_time_work_runs() {
        let before = tokio::time::Instant::now();
        // A timer pending on the paused runtime: without the blocking task, waiting for the
        // real-time work would let the clock jump to it.
        let pending = tokio::spawn(tokio::time::sleep(Duration::from_secs(3600)));
        let slept = super::run(async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            7
        })
        .await
        .unwrap();
        assert_eq!(slept, 7);
        assert!(tokio::time::Instant::now() - before < Duration::from_secs(1));
        pending.abort();
    }
}
