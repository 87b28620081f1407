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
