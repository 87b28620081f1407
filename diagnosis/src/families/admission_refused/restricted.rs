//! Passing Pod Security's `restricted` level by the checks a template most often misses when it
//! sets no securityContext: `runAsNonRoot` and a `RuntimeDefault` seccomp profile for the pod,
//! `allowPrivilegeEscalation: false` and every capability dropped for each container. Only the
//! checks the refusal names are answered, and only where the template sets no securityContext of
//! its own (a merge of someone's settings is a human's); any other violation — privileged, host
//! namespaces, hostPath, a root UID — is a decision about what the app needs, and escalates.

use crate::undo::template_of;
use crate::{Change, Edit, RemedyInput};

/// The checks this fix answers, as the refusal words them, and where each goes.
const POD: &[&str] = &["runAsNonRoot != true", "seccompProfile"];
const CONTAINER: &[&str] = &[
    "allowPrivilegeEscalation != false",
    "unrestricted capabilities",
];

/// The violations of a refusal, one per check (`allowPrivilegeEscalation != false (…)`).
fn violations(words: &str) -> Vec<&str> {
    // Checks are joined with ", " outside the parentheses that detail them.
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in words.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(words[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(words[start..].trim());
    out.retain(|v| !v.is_empty());
    out
}

/// The fix, or why there is none squad writes (for the escalation).
pub fn fix(input: &RemedyInput<'_>, level: &str, words: &str) -> Result<Change, String> {
    let found = violations(words);
    let unanswered: Vec<&str> = found
        .iter()
        .filter(|v| !POD.iter().chain(CONTAINER).any(|c| v.starts_with(c)))
        .copied()
        .collect();
    if !level.starts_with("restricted") || !unanswered.is_empty() {
        return Err(format!(
            "the pods violate {level} by what the app may need ({}): whether it can run without it is the app owner's call",
            unanswered.join(", ")
        ));
    }
    let w = input.workload;
    let doc = input
        .repo
        .workload(w)
        .document()
        .ok_or("the repository's manifest does not declare the workload")?;
    let spec = &template_of(w, &doc)["spec"];
    if !spec["initContainers"].is_null() {
        return Err("the template has init containers, which squad does not edit yet".into());
    }
    let containers: Vec<&str> = spec["containers"]
        .as_array()
        .map(|cs| cs.iter().filter_map(|c| c["name"].as_str()).collect())
        .unwrap_or_default();
    let set_already = !spec["securityContext"].is_null()
        || spec["containers"]
            .as_array()
            .is_some_and(|cs| cs.iter().any(|c| !c["securityContext"].is_null()));
    if set_already || containers.is_empty() {
        return Err(
            "the template already sets a securityContext: merging the restricted settings into it is a human's review".into(),
        );
    }
    let needs = |checks: &[&str]| {
        found
            .iter()
            .any(|v| checks.iter().any(|c| v.starts_with(c)))
    };
    let mut edits = Vec::new();
    if needs(POD) {
        let mut keys: Vec<String> = crate::undo::template_keys(&w.kind)
            .iter()
            .map(|k| (*k).to_owned())
            .collect();
        keys.extend(["spec".to_owned(), "securityContext".to_owned()]);
        edits.push(Edit::SetObjectKey {
            path: input.repo.path.clone(),
            kind: w.kind.clone(),
            name: w.name.clone(),
            keys,
            lines: Some(
                [
                    "securityContext:",
                    "  runAsNonRoot: true",
                    "  seccompProfile:",
                    "    type: RuntimeDefault",
                ]
                .map(str::to_owned)
                .to_vec(),
            ),
        });
    }
    if needs(CONTAINER) {
        for c in &containers {
            edits.push(Edit::SetContainerKey {
                path: input.repo.path.clone(),
                kind: w.kind.clone(),
                workload: w.name.clone(),
                container: (*c).to_owned(),
                key: "securityContext".into(),
                lines: Some(
                    [
                        "securityContext:",
                        "  allowPrivilegeEscalation: false",
                        "  capabilities:",
                        "    drop:",
                        "    - ALL",
                    ]
                    .map(str::to_owned)
                    .to_vec(),
                ),
            });
        }
    }
    let listed: String = found.iter().map(|v| format!("- {v}\n")).collect();
    Ok(Change {
        branch_word: "pod-security".into(),
        title: format!(
            "fix(security): make {}'s pods pass Pod Security {level}",
            w.name
        ),
        edits,
        notes: format!(
            "### Pass the namespace's Pod Security level\nThe apiserver refuses every new pod of {} (`violates PodSecurity \"{level}\"`):\n{listed}\nThis PR sets what each named check requires and nothing else: for the pod, `runAsNonRoot: true` and the `RuntimeDefault` seccomp profile; for each container ({}), `allowPrivilegeEscalation: false` and every capability dropped. **Check before merging:** the image must run as a non-root user (a numeric `USER` in its Dockerfile); if it runs as root, the kubelet refuses to start it (`CreateContainerConfigError`) and the image must change first.\n",
            w.name,
            containers.join(", ")
        ),
        findings: vec![squad_protocols::Finding {
            severity: squad_protocols::Severity::High,
            title: format!("pod template violates Pod Security {level}"),
            detail: words.to_owned(),
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_splits_into_its_checks() {
        let words = "allowPrivilegeEscalation != false (container \"api\" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container \"api\" must set securityContext.capabilities.drop=[\"ALL\"]), runAsNonRoot != true (pod or container \"api\" must set securityContext.runAsNonRoot=true), seccompProfile (pod or container \"api\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")";
        let v = violations(words);
        assert_eq!(v.len(), 4);
        assert!(v[1].starts_with("unrestricted capabilities (container \"api\""));
        assert!(v[3].starts_with("seccompProfile"));
    }
}
