//! kubectl prints the same rows from the real apiserver as from the simulated one.

use super::*;

/// `kubectl --kubeconfig=... ARGS`, run off the runtime's threads (both servers under test may
/// be served by this runtime).
pub(super) async fn kubectl(kubeconfig: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(apiserver::kubectl_program());
    // Discovery is cached per server next to its kubeconfig: kubectl's default cache is keyed
    // by host:port, and a port reused by another server (1.20 vs the simulated 1.33) would
    // answer with the wrong resources.
    cmd.arg(format!("--kubeconfig={}", kubeconfig.display()))
        .arg(format!(
            "--cache-dir={}",
            kubeconfig
                .parent()
                .map_or_else(
                    || std::path::PathBuf::from("."),
                    |d| d.join("kubectl-cache")
                )
                .display()
        ))
        .args(args);
    tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .unwrap()
}

pub(super) async fn kubectl_ok(kubeconfig: &Path, args: &[&str]) -> String {
    let out = kubectl(kubeconfig, args).await;
    assert!(
        out.status.success(),
        "kubectl {} against {} failed ({}): {}",
        args.join(" "),
        kubeconfig.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A header's columns and the character offset each starts at (columns are separated by two
/// or more spaces; a header may hold one space, as in `LAST SEEN`).
pub(super) fn columns(header: &str) -> Vec<(String, usize)> {
    let chars: Vec<char> = header.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == ' ' {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && !(chars[i] == ' ' && chars.get(i + 1).is_none_or(|c| *c == ' ')) {
            i += 1;
        }
        out.push((chars[start..i].iter().collect::<String>(), start));
    }
    out
}

/// The rows of kubectl's table output as column → cell, for every section (one per resource
/// type, separated by blank lines, each under its own header). Cells are cut at the header's
/// offsets, so a cell may hold spaces (`28 (2m ago)`).
pub(super) fn rows(text: &str) -> Vec<BTreeMap<String, String>> {
    let mut out = Vec::new();
    let mut header: Option<Vec<(String, usize)>> = None;
    for line in text.lines() {
        if line.trim().is_empty() {
            header = None;
            continue;
        }
        let Some(cols) = &header else {
            header = Some(columns(line));
            continue;
        };
        let chars: Vec<char> = line.chars().collect();
        let mut row = BTreeMap::new();
        for (i, (name, start)) in cols.iter().enumerate() {
            let end = cols
                .get(i + 1)
                .map_or(chars.len(), |c| c.1)
                .min(chars.len());
            let start = (*start).min(end);
            let cell: String = chars[start..end].iter().collect();
            row.insert(name.clone(), cell.trim().to_owned());
        }
        out.push(row);
    }
    out
}

/// Selected cells of every row, sorted.
pub(super) fn cells(
    rows: &[BTreeMap<String, String>],
    pick: impl Fn(&BTreeMap<String, String>) -> Vec<String>,
) -> Vec<Vec<String>> {
    let mut v: Vec<Vec<String>> = rows.iter().map(pick).collect();
    v.sort();
    v
}

pub(super) fn cell(row: &BTreeMap<String, String>, column: &str) -> String {
    row.get(column).cloned().unwrap_or_default()
}

/// Every cell but AGE (ages differ: the real objects were created at seeding).
pub(super) fn all_but_age(row: &BTreeMap<String, String>) -> Vec<String> {
    row.iter()
        .filter(|(k, _)| k.as_str() != "AGE")
        .map(|(k, v)| format!("{k}={v}"))
        .collect()
}

/// The lines of `kubectl describe`'s Events table (Type, Reason, Message), dedented.
pub(super) fn described_events(text: &str) -> Vec<Vec<String>> {
    let Some((_, after)) = text.split_once("\nEvents:") else {
        return Vec::new();
    };
    let table: Vec<&str> = after
        .lines()
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter(|l| !l.trim_start().starts_with("----"))
        .map(|l| l.get(2..).unwrap_or(""))
        .collect();
    cells(&rows(&table.join("\n")), |r| {
        vec![cell(r, "Type"), cell(r, "Reason"), cell(r, "Message")]
    })
}

async fn kubectl_matches(scenario: &str) {
    const TEST: &str = "kubectl_prints_the_same_rows_from_both";
    let Some(t) = Twin::still(TEST, scenario, Options::default()).await else {
        return;
    };
    let sim_kc = t.backends.kubeconfig.clone();
    let real_kc: PathBuf = t.real.kubeconfig_path().to_path_buf();
    let s = &t.scenario;
    let ns = s.workload.namespace.as_str();
    let pod = s.workload.pods[0].as_str();
    let container = s.workload.container.as_str();
    let mut d = Differences::default();

    // Pods: the restart count is RESTARTS' first token (`28 (2m ago)` from servers >= 1.22, and
    // from the simulated one; a bare `28` from 1.20).
    let get_pods = ["get", "pods", "-n", ns];
    let pod_cells = |r: &BTreeMap<String, String>| {
        vec![
            cell(r, "NAME"),
            cell(r, "READY"),
            cell(r, "STATUS"),
            cell(r, "RESTARTS")
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_owned(),
        ]
    };
    d.rows(
        "kubectl get pods",
        cells(&rows(&kubectl_ok(&sim_kc, &get_pods).await), pod_cells),
        cells(&rows(&kubectl_ok(&real_kc, &get_pods).await), pod_cells),
    );

    let get_more = ["get", "deploy,hpa,netpol", "-n", ns];
    d.rows(
        "kubectl get deploy,hpa,netpol",
        cells(&rows(&kubectl_ok(&sim_kc, &get_more).await), all_but_age),
        cells(&rows(&kubectl_ok(&real_kc, &get_more).await), all_but_age),
    );

    // describe: the last termination, and the pod's Events (found by the pod's uid, which the
    // seeding rewrote in every Event).
    let describe = ["describe", "pod", pod, "-n", ns];
    let sim_described = kubectl_ok(&sim_kc, &describe).await;
    let real_described = kubectl_ok(&real_kc, &describe).await;
    let last = t.backends.sim.pod(ns, pod).unwrap().containers[0]
        .last_termination
        .clone()
        .unwrap();
    for (server, text) in [("simulated", &sim_described), ("real", &real_described)] {
        for line in [
            "Last State:     Terminated".to_owned(),
            format!("Reason:       {}", last.reason),
            format!("Exit Code:    {}", last.exit_code),
        ] {
            assert!(
                text.contains(&line),
                "{scenario}: kubectl describe pod against the {server} apiserver lacks {line:?}:\n{text}"
            );
        }
    }
    if scenario == "oomkilled" {
        assert_eq!((last.reason.as_str(), last.exit_code), ("OOMKilled", 137));
    }
    d.rows(
        "kubectl describe pod: Events",
        described_events(&sim_described),
        described_events(&real_described),
    );

    // logs: through the real apiserver, they come from the fake kubelet.
    let logs = ["logs", "--previous", pod, "-c", container, "-n", ns];
    let sim_logs = kubectl_ok(&sim_kc, &logs).await;
    let real_logs = kubectl_ok(&real_kc, &logs).await;
    assert!(!sim_logs.trim().is_empty(), "{scenario}: no previous logs");
    d.check::<String>("kubectl logs --previous", Ok(sim_logs), Ok(real_logs));

    // Events: the namespace's, and the node's (in `default`; only OOM kills make some).
    let event_cells = |r: &BTreeMap<String, String>| vec![cell(r, "REASON"), cell(r, "OBJECT")];
    let get_events = ["get", "events", "-n", ns];
    d.rows(
        &format!("kubectl get events -n {ns}"),
        cells(&rows(&kubectl_ok(&sim_kc, &get_events).await), event_cells),
        cells(&rows(&kubectl_ok(&real_kc, &get_events).await), event_cells),
    );
    let get_events = ["get", "events", "-n", "default"];
    d.check::<Vec<Vec<String>>>(
        "kubectl get events -n default",
        Ok(cells(
            &rows(&kubectl_ok(&sim_kc, &get_events).await),
            event_cells,
        )),
        Ok(cells(
            &rows(&kubectl_ok(&real_kc, &get_events).await),
            event_cells,
        )),
    );

    let moved = t.model_moved_on();
    assert!(
        d.0.is_empty(),
        "{scenario}: kubectl printed different rows from the simulated and the real apiserver{}:\n{}",
        if moved {
            " (the model's pods also changed since seeding: the test ran too slowly)"
        } else {
            ""
        },
        d.0.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_prints_the_same_rows_from_both() {
    tokio::join!(kubectl_matches("oomkilled"), kubectl_matches("crashloop"));
}
