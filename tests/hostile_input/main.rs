//! Limits that hold (#11, "Hostile input"): every input squad takes from outside has a limit, and
//! past it a clear error naming the field or the source and what was expected, with bounded
//! memory — never a panic, a hang or unbounded growth.
//!
//! - [`yaml`]: alias bombs (a billion laughs, and the flat bomb serde_yaml does not stop), 10,000
//!   levels of nesting and oversized files through every reader of the GitOps repository; deep
//!   TOML in `squad.toml` and scenario files;
//! - [`webhooks`]: the Alertmanager, PagerDuty, generic and GitHub webhooks over real HTTP
//!   against `squad serve`, every field at its extremes, huge label sets, invalid UTF-8;
//! - [`logs`]: a 100 MiB container log through the Kubernetes adapter;
//! - [`holmes`]: a HolmesGPT that prints 100 MiB, writes an oversized or non-UTF-8 answer;
//! - [`model`]: a model that answers 20 MiB, or bytes that are not UTF-8;
//! - [`forge`]: GitHub's title and body limits, and 10,000-file repositories.
//!
//! Memory is measured in a child process (this test binary running one test alone): the
//! growth of its peak resident set (VmHWM, reset through `/proc/self/clear_refs` once the input
//! is built) over the operation. Bounds asserted are generous (several times what was
//! measured); the figures are printed with `--nocapture`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod daemon;
mod forge;
mod holmes;
mod logs;
mod model;
mod webhooks;
mod yaml;

use std::process::Command;

/// Set in the child process a measured test runs in.
const CHILD: &str = "SQUAD_HOSTILE_INPUT_CHILD";

/// Whether this process is the child running one measured test.
fn in_child() -> bool {
    std::env::var_os(CHILD).is_some()
}

/// A field of `/proc/<pid>/status` in KiB (`VmRSS`, `VmHWM`).
fn status_kib(pid: &str, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Resets a process's peak resident set to its current one; the baseline to measure from.
fn reset_peak(pid: &str) -> u64 {
    // "5" resets VmHWM (Linux >= 4.0); where it is refused the peak so far stays in.
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
    status_kib(pid, "VmRSS")
}

/// How much a process's peak resident set grew over `base` (KiB).
fn peak_growth_kib(pid: &str, base: u64) -> u64 {
    status_kib(pid, "VmHWM").saturating_sub(base)
}

/// In the child: runs `operation` after a reset of the peak and prints the growth for the parent.
fn measure_here(operation: impl FnOnce()) {
    let base = reset_peak("self");
    operation();
    println!(
        "HOSTILE-INPUT peak-growth-kib={}",
        peak_growth_kib("self", base)
    );
}

/// In the parent: runs the test `name` (its path in this binary, e.g. `yaml::x`) alone in a
/// child process and returns the peak growth it measured, in KiB.
fn measured_in_child(name: &str) -> u64 {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{name} failed in its child process:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let growth = stdout
        .lines()
        .find_map(|l| Some(l.split_once("HOSTILE-INPUT peak-growth-kib=")?.1))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} printed no measurement:\n{stdout}"));
    println!("{name}: peak resident set grew {growth} KiB");
    growth
}

/// A tenth of a second of real time, between polls of a daemon that runs in another process.
#[allow(clippy::disallowed_methods)]
fn pause() {
    std::thread::sleep(std::time::Duration::from_millis(100));
}

/// A multi-threaded runtime for the async parts.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A MiB in KiB, as the measurements are.
const MIB_KIB: u64 = 1024;
