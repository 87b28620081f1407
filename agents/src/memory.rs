//! The crew's memory of past incidents: Scribe writes decision entries to the GitOps repository's
//! `.squad/decisions.md` (Squad's layout); Picard and every member's brief read them back.

use squad_protocols::WorkloadRef;

use crate::CrewContext;

/// The shared decision record, merged by Scribe.
pub const DECISIONS: &str = ".squad/decisions.md";

/// What past incidents of a workload taught: the decision entries that name it.
pub async fn recall(ctx: &CrewContext, workload: &WorkloadRef) -> Vec<String> {
    let Ok(base) = ctx.forge.default_branch().await else {
        return Vec::new();
    };
    let Ok(Some(text)) = ctx.forge.read_file(DECISIONS, &base).await else {
        return Vec::new();
    };
    entries_about(&text, workload)
}

/// The entries of a decision record that name a workload: each entry's heading and its **What**.
pub fn entries_about(text: &str, workload: &WorkloadRef) -> Vec<String> {
    text.split("\n### ")
        .filter(|entry| entry.contains(&format!("{}/{}", workload.namespace, workload.name)))
        .map(|entry| {
            entry
                .lines()
                .next()
                .unwrap_or("")
                .trim_start_matches("### ")
                .to_owned()
                + " — "
                + &entry
                    .lines()
                    .find(|l| l.starts_with("**What:**"))
                    .unwrap_or("")
                    .replace("**What:** ", "")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_entries_naming_the_workload_are_recalled() {
        let text = "# Decisions\n\n### 2026-11-20: oomkilled on production/payment-service\n**By:** B'Elanna\n**What:** opened PR #3: raise limits\n\n### 2026-11-21: crashloopbackoff on staging/orders-api\n**What:** opened PR #4\n";
        let w = WorkloadRef {
            kind: "Deployment".into(),
            namespace: "production".into(),
            name: "payment-service".into(),
        };
        assert_eq!(
            entries_about(text, &w),
            ["2026-11-20: oomkilled on production/payment-service — opened PR #3: raise limits"]
        );
    }
}
