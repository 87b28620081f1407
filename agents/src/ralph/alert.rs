//! The incident's alert after the observation window: Ralph's verdict also asks whether it
//! resolved. An alert goes on firing for a while after its cause is gone (the rule's range
//! window, one evaluation, Alertmanager's group_interval; the rule's `for:` plays no part in
//! resolving), so a still-firing alert gets a bounded grace, polled, before the verdict fails.

use std::time::Duration;

use squad_protocols::Verification;
use squad_runtime::ports::{ActiveAlert, AlertQuery, Alerts};

/// What Ralph learned of the incident's alert.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum AlertState {
    /// The alerting system holds none in the workload's scope, `waited` minutes after the
    /// window.
    Resolved { waited: u64 },
    /// No alerting system to ask, but the incident's journal holds Alertmanager's resolved
    /// notification.
    Notified,
    /// No alerting system to ask, and no resolved notification.
    NotRead,
    /// Asking failed; `firing` is what was seen before, if anything.
    Unreadable {
        error: String,
        notified: bool,
        firing: Option<(Vec<ActiveAlert>, u64)>,
    },
    /// Still firing at the end of the grace, `waited` minutes after the window.
    Firing {
        alerts: Vec<ActiveAlert>,
        waited: u64,
    },
}

/// Asks `port` about the alert, every `poll_minutes` while it still fires, up to
/// `grace_minutes` after the window. Without a port nothing is waited for: the journal's
/// resolved notification (`notified`) is all there is to go on.
pub(super) async fn after_window(
    port: Option<&dyn Alerts>,
    query: &AlertQuery,
    notified: bool,
    poll_minutes: u64,
    grace_minutes: u64,
) -> AlertState {
    let Some(port) = port else {
        return if notified {
            AlertState::Notified
        } else {
            AlertState::NotRead
        };
    };
    let poll = poll_minutes.max(1);
    let mut waited = 0;
    let mut seen = None;
    loop {
        match port.firing(query).await {
            Err(e) => {
                return AlertState::Unreadable {
                    error: e.to_string(),
                    notified,
                    firing: seen,
                };
            }
            Ok(alerts) if alerts.is_empty() => return AlertState::Resolved { waited },
            Ok(alerts) => {
                if waited + poll > grace_minutes {
                    return AlertState::Firing { alerts, waited };
                }
                tracing::info!(
                    alert = %query.name,
                    workload = %query.workload,
                    "the fix held but the alert still fires {waited} min after the window; asking again in {poll} min"
                );
                seen = Some((alerts, waited));
            }
        }
        tokio::time::sleep(Duration::from_secs(poll * 60)).await;
        waited += poll;
    }
}

/// The alert's state in the verdict: said in its detail, and a still-firing alert fails it.
pub(super) fn conclude(state: &AlertState, name: &str, v: &mut Verification) {
    let said = match state {
        AlertState::Resolved { waited: 0 } => format!("{name} resolved"),
        AlertState::Resolved { waited } => {
            format!("{name} resolved {waited} min after the window")
        }
        AlertState::Notified => {
            format!("{name} resolved (Alertmanager's resolved notification)")
        }
        AlertState::NotRead => {
            format!("the state of alert {name} was not read (no [alertmanager] url)")
        }
        AlertState::Unreadable {
            error,
            notified: true,
            ..
        } => format!(
            "{name} resolved (Alertmanager's resolved notification; its API could not be read: {error})"
        ),
        AlertState::Unreadable {
            error,
            firing: Some((alerts, waited)),
            ..
        } => format!(
            "{name} was still firing {} when last read ({waited} min after the window), then its state could not be read: {error}",
            which(alerts)
        ),
        AlertState::Unreadable { error, .. } => {
            format!("the state of alert {name} could not be read: {error}")
        }
        AlertState::Firing { alerts, waited } => {
            v.healthy = false;
            v.detail = format!(
                "the workload held over the {} min window ({}), but {name} still fires {}{}",
                v.window_minutes,
                v.detail,
                which(alerts),
                if *waited > 0 {
                    format!(", {waited} min after the window")
                } else {
                    String::new()
                }
            );
            return;
        }
    };
    v.detail = if v.detail.is_empty() {
        said
    } else {
        format!("{}; {said}", v.detail)
    };
}

/// `for pod web-1 since T`, the first few of them and how many more.
fn which(alerts: &[ActiveAlert]) -> String {
    const SHOWN: usize = 3;
    let mut text = alerts
        .iter()
        .take(SHOWN)
        .map(ActiveAlert::describe)
        .collect::<Vec<_>>()
        .join(" and ");
    if alerts.len() > SHOWN {
        text.push_str(&format!(" (and {} more)", alerts.len() - SHOWN));
    }
    text
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::{BTreeMap, VecDeque};
    use std::sync::Mutex;

    use async_trait::async_trait;
    use squad_protocols::{Alert, WorkloadRef};
    use squad_runtime::ports::{PortError, PortResult};

    use super::*;

    /// An alerting system answering from a script, one answer per question (the last repeats),
    /// counting the questions.
    struct Scripted {
        answers: Mutex<VecDeque<PortResult<Vec<ActiveAlert>>>>,
        asked: Mutex<u32>,
    }

    impl Scripted {
        fn new(answers: Vec<PortResult<Vec<ActiveAlert>>>) -> Self {
            Scripted {
                answers: Mutex::new(answers.into()),
                asked: Mutex::new(0),
            }
        }
        fn asked(&self) -> u32 {
            *self.asked.lock().unwrap()
        }
    }

    #[async_trait]
    impl Alerts for Scripted {
        async fn firing(&self, _: &AlertQuery) -> PortResult<Vec<ActiveAlert>> {
            *self.asked.lock().unwrap() += 1;
            let mut answers = self.answers.lock().unwrap();
            if answers.len() > 1 {
                answers.pop_front().unwrap()
            } else {
                answers.front().cloned().unwrap()
            }
        }
    }

    fn query() -> AlertQuery {
        let original = Alert::firing("KubePodCrashLooping")
            .with_label("namespace", "shop")
            .with_label("pod", "web-5d9f7c-old11");
        AlertQuery::of(
            &original,
            &WorkloadRef::deployment("shop", "web"),
            vec!["web-7c4b2d-new22".into()],
        )
    }

    fn crashlooping() -> Vec<ActiveAlert> {
        vec![ActiveAlert {
            labels: [
                ("alertname", "KubePodCrashLooping"),
                ("namespace", "shop"),
                ("pod", "web-7c4b2d-new22"),
            ]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<BTreeMap<_, _>>(),
            starts_at: Some("2026-11-23T19:21:20Z".parse().unwrap()),
        }]
    }

    fn held() -> Verification {
        Verification {
            healthy: true,
            window_minutes: 60,
            oom_kills: 0,
            restarts: 0,
            peak: None,
            limit: None,
            detail: "3 of 3 replicas Ready; 0 restart(s), 0 OOM kill(s) in 60 min".into(),
            prediction: None,
            prediction_right: None,
        }
    }

    async fn verdict(port: Option<&Scripted>, notified: bool) -> (AlertState, Verification) {
        let state = after_window(port.map(|p| p as &dyn Alerts), &query(), notified, 5, 15).await;
        let mut v = held();
        conclude(&state, "KubePodCrashLooping", &mut v);
        (state, v)
    }

    #[tokio::test(start_paused = true)]
    async fn an_alert_gone_after_the_window_resolves_the_verdict_at_once() {
        let port = Scripted::new(vec![Ok(vec![])]);
        let started = tokio::time::Instant::now();
        let (state, v) = verdict(Some(&port), false).await;
        assert_eq!(state, AlertState::Resolved { waited: 0 });
        assert_eq!(port.asked(), 1);
        assert_eq!(started.elapsed(), Duration::ZERO);
        assert!(v.healthy);
        assert!(
            v.detail
                .ends_with("in 60 min; KubePodCrashLooping resolved"),
            "{}",
            v.detail
        );
    }

    /// The fix held; the alert takes two polls to resolve (its rule's range still sees the old
    /// pod's restarts).
    #[tokio::test(start_paused = true)]
    async fn an_alert_still_firing_is_polled_until_it_resolves_within_the_grace() {
        let port = Scripted::new(vec![Ok(crashlooping()), Ok(crashlooping()), Ok(vec![])]);
        let started = tokio::time::Instant::now();
        let (state, v) = verdict(Some(&port), false).await;
        assert_eq!(state, AlertState::Resolved { waited: 10 });
        assert_eq!(port.asked(), 3);
        assert_eq!(started.elapsed(), Duration::from_secs(10 * 60));
        assert!(v.healthy);
        assert!(
            v.detail
                .ends_with("KubePodCrashLooping resolved 10 min after the window"),
            "{}",
            v.detail
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_alert_firing_past_the_grace_fails_the_verdict_saying_for_what_and_since_when() {
        let port = Scripted::new(vec![Ok(crashlooping())]);
        let started = tokio::time::Instant::now();
        let (state, v) = verdict(Some(&port), true).await;
        assert!(matches!(state, AlertState::Firing { waited: 15, .. }));
        // At 0, 5, 10 and 15 min after the window; never beyond the grace.
        assert_eq!(port.asked(), 4);
        assert_eq!(started.elapsed(), Duration::from_secs(15 * 60));
        assert!(!v.healthy);
        assert_eq!(
            v.detail,
            "the workload held over the 60 min window (3 of 3 replicas Ready; 0 restart(s), 0 OOM kill(s) in 60 min), but KubePodCrashLooping still fires for pod web-7c4b2d-new22 since 2026-11-23T19:21:20Z, 15 min after the window"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn without_an_alerting_system_nothing_is_waited_and_the_verdict_says_so() {
        let started = tokio::time::Instant::now();
        let (state, v) = verdict(None, false).await;
        assert_eq!(state, AlertState::NotRead);
        assert_eq!(started.elapsed(), Duration::ZERO);
        assert!(v.healthy);
        assert!(
            v.detail.ends_with(
                "; the state of alert KubePodCrashLooping was not read (no [alertmanager] url)"
            ),
            "{}",
            v.detail
        );
        // Alertmanager's resolved notification in the journal counts as resolved.
        let (state, v) = verdict(None, true).await;
        assert_eq!(state, AlertState::Notified);
        assert!(v.healthy);
        assert!(
            v.detail
                .ends_with("KubePodCrashLooping resolved (Alertmanager's resolved notification)"),
            "{}",
            v.detail
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_unreadable_alerting_system_does_not_fail_the_verdict_and_is_said_with_its_error() {
        let refused = PortError::Unavailable {
            what: "Alertmanager at http://am:9093".into(),
            detail: "connection refused".into(),
        };
        let port = Scripted::new(vec![Err(refused.clone())]);
        let (state, v) = verdict(Some(&port), false).await;
        assert!(matches!(state, AlertState::Unreadable { .. }));
        assert!(v.healthy);
        assert!(
            v.detail.ends_with(
                "; the state of alert KubePodCrashLooping could not be read: Alertmanager at http://am:9093: unavailable: connection refused"
            ),
            "{}",
            v.detail
        );
        // Seen firing, then unreadable: the verdict says it still fired.
        let port = Scripted::new(vec![Ok(crashlooping()), Err(refused)]);
        let (_, v) = verdict(Some(&port), false).await;
        assert!(v.healthy);
        assert!(
            v.detail.contains(
                "KubePodCrashLooping was still firing for pod web-7c4b2d-new22 since 2026-11-23T19:21:20Z when last read (0 min after the window), then its state could not be read: Alertmanager"
            ),
            "{}",
            v.detail
        );
    }
}
