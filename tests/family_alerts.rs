//! Each shipped scenario's alert is the one a real cluster would send: the upstream alerting
//! rules (`tests/fixtures/alerting/kubernetes-mixin.yml`) run by the real Prometheus rule engine
//! (`promtool test rules`, Debian's Prometheus 2.42) over the scenario's simulated series fire
//! the scenario's `[alert]` at the scenario's `now`, with exactly its labels (and the rule's
//! severity and annotations). The series are the world's own, sampled every minute over the three
//! hours before `now`, with the `job` label a scrape adds (`kube-state-metrics` for `kube_*`,
//! `kubelet` for `container_*`); only the alerted pod's series and those of no pod are kept, so
//! the expected alert is the only one the rule can produce.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;

use squad_runtime::Clock;
use squad_sim::series::SeriesSource;
use squad_sim::{Scenario, SimBackends};
use squad_testkit::prometheus::{PROMTOOL, available_or_skip};

const RULES: &str = include_str!("fixtures/alerting/kubernetes-mixin.yml");
/// How much history the rules see, in minutes (more than the longest `for:`, 1 h, plus its
/// expressions' ranges).
const WINDOW_MINUTES: i64 = 180;

fn job_of(metric: &str) -> &'static str {
    if metric.starts_with("kube_") {
        "kube-state-metrics"
    } else if metric.starts_with("container_") || metric.starts_with("kubelet_") {
        "kubelet"
    } else {
        "app"
    }
}

/// Go's `%.4g`: four significant digits, trailing zeros dropped (what `humanizePercentage`
/// prints, with a `%` sign after the value times 100).
fn go_4g(v: f64) -> String {
    let digits = if v == 0.0 {
        0
    } else {
        v.abs().log10().floor() as i32
    };
    let decimals = (3 - digits).max(0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    }
}

/// `{{ $labels.x }}` in an annotation template, filled from `labels`, and `{{ $value |
/// humanizePercentage }}` from `value`.
fn render(template: &str, labels: &BTreeMap<String, String>, value: Option<f64>) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find("}}").map(|e| start + e).unwrap();
        let inner = rest[start + 2..end].trim();
        if inner == "$value | humanizePercentage" {
            let v = value.unwrap_or_else(|| panic!("{template}: the alert's value is not known"));
            out.push_str(&format!("{}%", go_4g(v * 100.0)));
            rest = &rest[end + 2..];
            continue;
        }
        let key = inner
            .strip_prefix("$labels.")
            .unwrap_or_else(|| panic!("template {inner:?} is not a label"));
        out.push_str(labels.get(key).map_or("", String::as_str));
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    out
}

fn quote(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The value an alert's annotations print, for the rules whose annotations print it: the ratio
/// of two counters' increase over the last 5 minutes (both sampled at the same instants, so
/// `increase()`'s extrapolation cancels in the ratio).
fn alert_value(scenario: &Scenario, series: &BTreeMap<String, Vec<Option<f64>>>) -> Option<f64> {
    let (num, den) = match scenario.alert.name.as_str() {
        "CPUThrottlingHigh" => (
            "container_cpu_cfs_throttled_periods_total{",
            "container_cpu_cfs_periods_total{",
        ),
        "KubePersistentVolumeFillingUp" => {
            // The free share now (both rules' value).
            let now = |prefix: &str| {
                let (_, v) = series.iter().find(|(k, _)| k.starts_with(prefix))?;
                *v.last()?
            };
            return Some(
                now("kubelet_volume_stats_available_bytes{")?
                    / now("kubelet_volume_stats_capacity_bytes{")?,
            );
        }
        _ => return None,
    };
    let increase = |prefix: &str| {
        let (_, v) = series.iter().find(|(k, _)| k.starts_with(prefix))?;
        let n = v.len();
        Some(v[n - 1]? - v[n - 6]?)
    };
    Some(increase(num)? / increase(den)?)
}

/// The promtool test file for one scenario: its series and the alert it must fire.
async fn promtool_test(scenario: &Scenario, rules_path: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::starting_at(scenario.now);
    let backends = SimBackends::seed(
        Arc::new(scenario.clone()),
        dir.path(),
        clock,
        &Default::default(),
    )
    .await
    .unwrap();
    let pod = scenario.alert.labels.get("pod").cloned();
    let mut series: BTreeMap<String, Vec<Option<f64>>> = BTreeMap::new();
    for m in 0..=WINDOW_MINUTES {
        let t = scenario.now - chrono::Duration::minutes(WINDOW_MINUTES - m);
        for p in backends.sim.points_at(t) {
            if p.labels.get("pod").is_some_and(|x| Some(x) != pod.as_ref()) {
                continue;
            }
            let name = p.labels.get("__name__").cloned().unwrap_or_default();
            let mut labels = p.labels.clone();
            labels.remove("__name__");
            labels.insert("job".into(), job_of(&name).into());
            // The kubelet's own endpoint (cAdvisor's is /metrics/cadvisor).
            if name.starts_with("kubelet_") {
                labels.insert("metrics_path".into(), "/metrics".into());
            }
            let key = format!(
                "{name}{{{}}}",
                labels
                    .iter()
                    .map(|(k, v)| format!("{k}={}", quote(v)))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            let values = series
                .entry(key)
                .or_insert_with(|| vec![None; WINDOW_MINUTES as usize + 1]);
            values[m as usize] = Some(p.value);
        }
    }
    let value = alert_value(scenario, &series);
    let rules: serde_yaml::Value = serde_yaml::from_str(RULES).unwrap();
    // Every rule of that name fires (KubePersistentVolumeFillingUp has a critical and a warning
    // rule; a volume under 3% free and filling meets both), each with its own severity; the
    // scenario's alert is one of them.
    let fired: Vec<(BTreeMap<String, String>, BTreeMap<String, String>)> = rules["groups"]
        .as_sequence()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_sequence().unwrap())
        .filter(|r| r["alert"].as_str() == Some(scenario.alert.name.as_str()))
        .map(|rule| {
            let mut labels: BTreeMap<String, String> = scenario.alert.labels.clone();
            let severity = rule["labels"]["severity"].as_str().unwrap_or("");
            labels.insert("severity".into(), severity.to_owned());
            let annotations = rule["annotations"]
                .as_mapping()
                .unwrap()
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().unwrap().to_owned(),
                        render(v.as_str().unwrap(), &labels, value),
                    )
                })
                .collect();
            (labels, annotations)
        })
        .collect();
    assert!(
        fired
            .iter()
            .any(|(l, _)| l.get("severity") == Some(&scenario.alert.severity)),
        "{}: no {} rule of severity {}",
        scenario.name,
        scenario.alert.name,
        scenario.alert.severity
    );
    let mut out = format!(
        "rule_files:\n  - {}\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:\n",
        quote(rules_path)
    );
    for (key, values) in &series {
        let values: Vec<String> = values
            .iter()
            .map(|v| v.map_or("_".to_owned(), |v| format!("{v}")))
            .collect();
        out.push_str(&format!(
            "      - series: {}\n        values: {}\n",
            quote(key),
            quote(&values.join(" "))
        ));
    }
    out.push_str(&format!(
        "    alert_rule_test:\n      - eval_time: {WINDOW_MINUTES}m\n        alertname: {}\n        exp_alerts:\n",
        quote(&scenario.alert.name)
    ));
    for (labels, annotations) in &fired {
        out.push_str("          - exp_labels:\n");
        for (k, v) in labels {
            out.push_str(&format!("              {k}: {}\n", quote(v)));
        }
        out.push_str("            exp_annotations:\n");
        for (k, v) in annotations {
            out.push_str(&format!("              {k}: {}\n", quote(v)));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_fires_its_alert_under_the_upstream_rules() {
    if !available_or_skip("every_scenario_fires_its_alert_under_the_upstream_rules").unwrap() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let rules_path = dir.path().join("rules.yml");
    std::fs::write(&rules_path, RULES).unwrap();
    let mut failures = Vec::new();
    for name in Scenario::embedded_names() {
        let scenario = Scenario::embedded(&name).unwrap();
        let test = promtool_test(&scenario, rules_path.to_str().unwrap()).await;
        let path = dir.path().join(format!("{name}.test.yml"));
        std::fs::write(&path, &test).unwrap();
        if std::env::var_os("SQUAD_KEEP_PROMTOOL_TESTS").is_some() {
            std::fs::write(format!("/tmp/{name}.test.yml"), &test).unwrap();
        }
        let out = Command::new(PROMTOOL)
            .args(["test", "rules"])
            .arg(&path)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        println!("{name} ({}): {}", scenario.alert.name, text.trim());
        if !out.status.success() {
            failures.push(format!("{name}: {text}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
