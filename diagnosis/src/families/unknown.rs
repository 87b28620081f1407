//! Unknown: no family recognised the failure. Not a family to detect (it is what is left), but
//! the crew still routes, records and follows it: the crash-loop routing, a runbook named after
//! the alert, and no manifest change.

use squad_protocols::{Diagnosis, Member, RootCause, WorkloadRef};

use crate::{Detection, Facts, Family, Readings, Remedy, RemedyInput, RepoNeeds, Runbook};

pub struct Unknown;

impl Unknown {
    /// The detection when no family detects.
    pub fn fallback(facts: &Facts) -> Detection {
        Detection::new(
            format!("no failing signal found for {}", facts.container),
            0.2,
            &[],
        )
    }
}

impl Family for Unknown {
    fn root_cause(&self) -> RootCause {
        RootCause::unknown()
    }

    fn reason(&self) -> Option<&'static str> {
        None
    }

    fn detect(&self, _facts: &Facts, _readings: &Readings) -> Option<Detection> {
        None
    }

    fn routing(&self) -> &'static [(Member, &'static str)] {
        super::crash_loop::ROUTING
    }

    fn repo_needs(&self) -> RepoNeeds {
        RepoNeeds::NONE
    }

    fn remedy(&self, _d: &Diagnosis, _input: &RemedyInput<'_>) -> Remedy {
        Remedy::Nothing
    }

    fn runbook(&self, alert: &str) -> Runbook {
        Runbook {
            name: alert
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_lowercase()
                    } else {
                        '-'
                    }
                })
                .collect(),
            ..super::crash_loop::runbook()
        }
    }

    fn lessons(&self, workload: &WorkloadRef) -> Vec<String> {
        super::crash_loop::generic_lessons(workload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    #[test]
    fn nothing_failing_is_unknown_with_a_runbook_named_after_the_alert() {
        let mut f = testing::facts("Completed", 0, |_| 80.0, |_| 10.0);
        if let Some(p) = f.pod.as_mut() {
            p.containers[0].last_termination = None;
        }
        let d = testing::diagnosis(&f);
        assert_eq!(d.root_cause, RootCause::unknown());
        assert_eq!(d.summary, "no failing signal found for api");
        assert_eq!(
            Unknown.runbook("KubePodCrashLooping").name,
            "kubepodcrashlooping"
        );
        assert_eq!(Unknown.runbook("Disk Full!").name, "disk-full-");
        assert!(Unknown.reason().is_none());
    }
}
