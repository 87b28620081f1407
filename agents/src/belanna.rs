//! B'Elanna — infrastructure: applies the failure family's remedy to the GitOps repository and
//! delivers it as a pull request; her model may decide the family's numbers instead of its rule.
//!
//! What to change is the family's (see [`squad_diagnosis::Family::remedy`]): B'Elanna reads what
//! the family asks for (the workload's manifest, its history, the HPAs, the Secrets' key names),
//! lets her model deliberate on the family's typed proposal, applies the remedy's edits with the
//! format-preserving editor (comments, key order and unrelated lines untouched), and opens the PR
//! with the evidence and the rule in its body.

use std::collections::BTreeMap;

use async_trait::async_trait;
use squad_config::charters;
use squad_diagnosis::{
    Change, ClusterNeeds, ClusterView, Decision, Remedy, RemedyInput, RepoView, Rules, families,
};
use squad_protocols::incident::{Author, EventKind};
use squad_protocols::{
    Action, Assignment, Declared, FileChange, Finding, Member, PrSpec, Report, Severity,
};

use squad_runtime::CrewError;
use squad_runtime::ports::ReplayRequest;

mod repo;

use crate::mind::{self, Tool};
use crate::specialist::Skill;
use crate::{CrewContext, effects};

pub fn charter() -> &'static str {
    charters::charter(Member::Belanna)
}

pub struct Belanna;

/// The tools B'Elanna's model may use.
pub const TOOLS: &[Tool] = &[
    Tool::Workload,
    Tool::Pods,
    Tool::MemoryHistory,
    Tool::RequestRates,
    Tool::Hpas,
    Tool::GitopsListFiles,
    Tool::GitopsReadFile,
    Tool::SizeMemory,
];

/// What the family asks to read from the cluster. The HPA list may fail (the remedy works around
/// it); any other read it needs must succeed.
async fn read_cluster(
    ctx: &CrewContext,
    a: &Assignment,
    needs: ClusterNeeds,
) -> Result<ClusterView, CrewError> {
    let ns = &a.workload.namespace;
    let mut view = ClusterView::default();
    if needs.hpas {
        view.hpas = Some(ctx.cluster.hpas(ns).await.map_err(|e| e.to_string()));
    }
    if needs.workload {
        view.workload = Some(ctx.cluster.workload(&a.workload).await?);
    }
    if needs.secret_keys {
        view.secret_keys = Some(ctx.cluster.secret_keys(ns).await?);
    }
    Ok(view)
}

/// The files the change writes: its edits applied to the files they read (the manifest from the
/// view, others from the default branch).
async fn apply(
    ctx: &CrewContext,
    change: &Change,
    repo: &RepoView,
) -> Result<Vec<FileChange>, CrewError> {
    let mut files = BTreeMap::new();
    if !repo.path.is_empty() {
        files.insert(repo.path.clone(), repo.text.clone());
    }
    for edit in change.edits.iter().filter(|e| e.reads()) {
        // An inline patch is read with its kustomization.
        let path = squad_gitops::kustomize::file_of(edit.path());
        if files.contains_key(path) {
            continue;
        }
        let base = ctx.forge.default_branch().await?;
        if let Some(text) = ctx.forge.read_file(path, &base).await? {
            files.insert(path.to_owned(), text);
        }
    }
    let changed = squad_gitops::apply(&change.edits, &files)
        .map_err(|e| CrewError::invalid(format!("edit {}", repo.path), e))?;
    Ok(changed
        .into_iter()
        .map(|(path, content)| FileChange { path, content })
        .collect())
}

/// What the replay of a fix said.
enum Replayed {
    /// It holds: the PR says what the replay predicts.
    Held(Box<squad_protocols::Replay>),
    /// It does not: why, for the escalation, and the replay.
    Failed(String, Box<squad_protocols::Replay>),
    /// No replay ran, and why (the PR says so).
    NotRun(String),
}

/// Replays the change in the world model over `hours` (the family's: `[remediation]
/// replay_hours`, or a stop-gap's stated hours), and records what it predicts in the incident's
/// log (Ralph sets his verdict beside it).
async fn replay(
    ctx: &CrewContext,
    a: &Assignment,
    declared: Declared,
    files: &[FileChange],
    hours: u64,
) -> Result<Replayed, CrewError> {
    let Some(replayer) = ctx.replayer.as_ref().filter(|_| hours > 0) else {
        return Ok(Replayed::NotRun(if hours == 0 {
            "Not replayed: `[remediation] replay_hours = 0`.".into()
        } else {
            "Not replayed: this squad has no world model to replay the fix in (it was built without the `sim` feature, which seeds one from the cluster's facts); Ralph's verification after the merge is the proof.".into()
        }));
    };
    let signals = &a.diagnosis.signals;
    let request = ReplayRequest {
        workload: a.workload.clone(),
        container: signals
            .memory
            .as_ref()
            .map(|m| m.container.clone())
            .or_else(|| signals.crash.as_ref().map(|c| c.container.clone()))
            .unwrap_or_default(),
        declared,
        files: files.to_vec(),
        horizon: std::time::Duration::from_secs(hours * 3600),
    };
    // The replay takes tens of seconds: the timeline says what the incident waits on meanwhile.
    ctx.journal.record(
        &a.incident,
        Author::Belanna,
        EventKind::Note {
            text: format!(
                "replaying the fix in the world model over {hours} h before proposing it ({} file(s))",
                files.len()
            ),
        },
    )?;
    let replay = match replayer.replay(&request).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(incident = %a.incident, "the replay could not run: {e}");
            return Ok(Replayed::NotRun(format!("The replay could not run ({e}).")));
        }
    };
    ctx.journal.record(
        &a.incident,
        Author::Belanna,
        EventKind::Replayed {
            replay: replay.clone(),
        },
    )?;
    if replay.holds() {
        Ok(Replayed::Held(Box::new(replay)))
    } else {
        Ok(Replayed::Failed(
            format!(
                "the fix was replayed over {hours} h under the same load and does not hold (with it: {}; without it: {}), so it is not proposed",
                replay.with.describe(),
                replay.without.describe()
            ),
            Box::new(replay),
        ))
    }
}

/// The report when no manifest change is the answer.
fn no_fix(a: &Assignment, why: Option<&str>) -> Report {
    let d = &a.diagnosis;
    let mut r = Report::new(
        Member::Belanna,
        match why {
            None => format!(
                "no infrastructure fix for root cause {}; nothing to change in the manifests",
                d.root_cause.as_str()
            ),
            Some(why) if why.contains("the owner is ") => format!("no remediation PR: {why}"),
            Some(why) => format!("no remediation PR: {why}; a human must decide the fix"),
        },
    );
    r.findings.push(Finding {
        severity: Severity::Info,
        title: "no manifest change".into(),
        detail: why.map_or_else(|| d.summary.clone(), str::to_owned),
    });
    r
}

#[async_trait]
impl Skill for Belanna {
    fn member(&self) -> Member {
        Member::Belanna
    }

    async fn perform(&self, ctx: &CrewContext, a: &Assignment) -> Result<Report, CrewError> {
        let d = &a.diagnosis;
        let family = families::of(&d.root_cause);
        let rules = Rules::of(&ctx.settings);
        // The model decides the family's numbers, when it has any, before anything is read.
        let thought = match family.proposal(d, &rules) {
            Some(proposal) => {
                mind::deliberate_proposal(ctx, Member::Belanna, a, proposal, TOOLS, |answer| {
                    family.check_proposal(d, answer)
                })
                .await
            }
            None => mind::Thought {
                answer: None,
                by_model: None,
            },
        };
        let (repo, shape) = repo::read(ctx, a, family).await?;
        let cluster = read_cluster(ctx, a, family.cluster_needs(d, &repo)).await?;
        let decision = match (&thought.answer, &thought.by_model) {
            (Some(answer), Some(model)) => Some(Decision { answer, model }),
            _ => None,
        };
        let remedy = family.remedy(
            d,
            &RemedyInput {
                workload: &a.workload,
                repo: &repo,
                cluster: &cluster,
                rules,
                decision,
            },
        );
        let mut change = match remedy {
            Remedy::Change(change) => change,
            Remedy::Nothing => return Ok(no_fix(a, None)),
            Remedy::Escalate { reason } => return Ok(no_fix(a, Some(&reason))),
        };
        // Each edit where the affected environment sets the value (a Kustomize overlay, a Helm
        // values file).
        let (edits, moved) = shape.retarget(&change.edits, &repo, &a.workload.namespace);
        change.edits = edits;
        if !moved.is_empty() {
            let lines: String = moved.iter().map(|m| format!("- {m}\n")).collect();
            change.notes.push_str(&format!(
                "\n### Where {} sets it\n{lines}",
                a.workload.namespace
            ));
        }
        let files = apply(ctx, &change, &repo).await?;
        // Sizes already at or above what the rule asks for leave the manifests as they are.
        if files.is_empty() {
            return Ok(no_fix(a, None));
        }
        // The fix replayed in the world model first: one that does not hold is not proposed.
        let hours = family.replay_hours(d, &rules);
        let declared = shape.declared(&repo.path, &a.workload.namespace);
        let replayed = match replay(ctx, a, declared, &files, hours).await? {
            Replayed::Held(replay) => replay.table(),
            Replayed::Failed(why, replay) => {
                let why = match family.replay_failed(d, &replay) {
                    Some(owner) => format!("{why}: {owner}"),
                    None => why,
                };
                return Ok(no_fix(a, Some(&why)));
            }
            Replayed::NotRun(why) => format!(
                "### Replay
{why}
"
            ),
        };
        let base = ctx.forge.default_branch().await?;
        let Change {
            branch_word,
            title,
            notes,
            findings,
            ..
        } = change;
        let evidence: String = d
            .evidence
            .iter()
            .map(|e| format!("- **{}:** {}\n", e.source, e.observation))
            .collect();
        let past = if a.memory.is_empty() {
            String::new()
        } else {
            let lines: String = a.memory.iter().map(|m| format!("- {m}\n")).collect();
            format!("### Past incidents of this workload\n{lines}\n")
        };
        let body = format!(
            "Fixes the incident in #{} ({}).\n\n**Diagnosis:** {}\n\n{notes}\n{replayed}\n### Evidence\n{evidence}\n{past}### Rollout\nMerging syncs through GitOps; Ralph watches the rollout and resolves the incident only when the cluster confirms the fix.\n\n_Opened by squad's B'Elanna (infrastructure). A human reviews and merges._",
            a.issue.number, a.incident, d.summary
        );
        let spec = PrSpec {
            title: title.clone(),
            body,
            branch: format!("squad/{}-{branch_word}", a.incident),
            base,
            commit_message: format!("{title}\n\nIncident {} (#{}).", a.incident, a.issue.number),
            files,
            labels: vec![
                "incident".into(),
                "squad:belanna".into(),
                a.workload.namespace.clone(),
            ],
        };
        let pr =
            effects::pr_once(ctx, &a.incident, Member::Belanna, "remediation-pr", spec).await?;
        effects::comment_once(
            ctx,
            &a.incident,
            Member::Belanna,
            "pr-link",
            a.issue.number,
            &format!(
                "**B'Elanna** (infrastructure): remediation PR #{} opened — `{}`.\n\n{notes}",
                pr.number, title
            ),
        )
        .await?;
        let mut r = Report::new(
            Member::Belanna,
            format!("opened PR #{}: {title}", pr.number),
        );
        r.findings = findings;
        r.actions.push(Action::OpenedPr { pr, title });
        Ok(r)
    }
}
