//! The failure-family seam: one module per family, each implementing [`Family`], registered in
//! one list ([`crate::families::ALL`]).
//!
//! A family says, as pure functions, how to recognise a failure in the [`Facts`] (`detect`), what
//! the fix is in the GitOps repository (`remedy`), and how to tell from the cluster after the
//! rollout that the fix held (`verify`) — plus what the rest of the crew needs to know about it:
//! who Picard assigns, the runbook Scribe keeps, the follow-up Data files. The crew members are
//! generic over families: Picard routes on the detection, B'Elanna applies the remedy through
//! the manifest editor (and lets her model deliberate on the family's typed proposal), Ralph runs
//! the verdict. Adding a family touches its module, its scenario and their tests, and the list
//! (and, for a kind of fact no family reads yet, a `Lookup` in `facts.rs`).

use serde_json::Value;
use squad_config::settings::{RemediationSettings, VerificationSettings};
use squad_protocols::cluster::{HpaInfo, WorkloadInfo};
use squad_protocols::llm::Rejection;
use squad_protocols::{Diagnosis, Finding, Member, RootCause, Verification, WorkloadRef};
use squad_runtime::ports::FileVersion;

use crate::facts::Lookup;
use crate::followup::{FollowupContext, IssueDraft};
use crate::verdict::Observation;
use crate::{Facts, Readings};

/// A failure family.
pub trait Family: Send + Sync + 'static {
    /// The root cause this family names (`memory_leak`): the incident log's, the issue's and
    /// `--json`'s word for it.
    fn root_cause(&self) -> RootCause;

    /// The short reason in the incident's title, in the cluster's words (`OOMKilled`).
    fn reason(&self) -> Option<&'static str>;

    /// Whether the facts show this failure. Pure. Families are asked in the registry's order,
    /// most specific first; the first that detects names the root cause.
    fn detect(&self, facts: &Facts, readings: &Readings) -> Option<Detection>;

    /// What the family needs read beyond the base facts to decide, given them (pure): the
    /// claims the pods mount, the RBAC of a refused ServiceAccount, the NetworkPolicies when a
    /// connection timed out… Gathering reads what any family asks for, once.
    fn lookups(&self, _facts: &Facts) -> Vec<Lookup> {
        Vec::new()
    }

    /// Who Picard assigns, and why (Scribe and Ralph always follow).
    fn routing(&self) -> &'static [(Member, &'static str)];

    /// What B'Elanna reads from the repository for the remedy.
    fn repo_needs(&self) -> RepoNeeds {
        RepoNeeds::MANIFEST
    }

    /// The other objects of the workload's namespace the remedy reads from the repository, as
    /// `(kind, name)`: the Service the pods should back, the claim, the HPA, the policies…
    /// B'Elanna finds the file that declares each (with its versions when `repo_needs` asks for
    /// the history); one the repository does not declare is left out.
    fn repo_objects(&self, _d: &Diagnosis) -> Vec<(String, String)> {
        Vec::new()
    }

    /// What B'Elanna reads from the cluster, knowing the repository.
    fn cluster_needs(&self, _d: &Diagnosis, _repo: &RepoView) -> ClusterNeeds {
        ClusterNeeds::default()
    }

    /// The typed decision B'Elanna's model deliberates on, when the fix has one (sizes, say).
    fn proposal(&self, _d: &Diagnosis, _rules: &Rules<'_>) -> Option<Proposal> {
        None
    }

    /// Whether a model's answer to [`Family::proposal`] holds against the measurements.
    fn check_proposal(&self, _d: &Diagnosis, _answer: &Value) -> Result<(), Rejection> {
        Ok(())
    }

    /// The fix. Pure: the repository and cluster views are read before.
    fn remedy(&self, d: &Diagnosis, input: &RemedyInput<'_>) -> Remedy;

    /// How far ahead the fix must hold in the replay before it is proposed: the team's
    /// `[remediation] replay_hours`, or less for a fix that is a stated stop-gap.
    fn replay_hours(&self, _d: &Diagnosis, rules: &Rules<'_>) -> u64 {
        rules.remediation.replay_hours
    }

    /// Who decides, when the replay shows the family's fix does not hold (`the owner is …, who
    /// …`), for the escalation; `None`: a human must decide.
    fn replay_failed(&self, _d: &Diagnosis, _replay: &squad_protocols::Replay) -> Option<String> {
        None
    }

    /// What the verdict reads beyond the default (the workload's pods, restarts, memory and
    /// traffic): Ralph reads only what the family's verdict uses.
    fn verify_needs(&self) -> VerifyNeeds {
        VerifyNeeds::default()
    }

    /// Whether the fix held over the observation window. The default: every replica Ready and no
    /// pod stuck, no restart, no OOM kill, and memory at its trend still under the limit
    /// `projection_hours` ahead.
    fn verify(&self, d: &Diagnosis, obs: &Observation, rules: &Rules<'_>) -> Verification {
        default_verdict(d, obs, rules)
    }

    /// The runbook Scribe keeps for this family (`docs/runbooks/<name>.md`).
    fn runbook(&self, alert: &str) -> Runbook;

    /// What the decision record remembers when no model distils lessons.
    fn lessons(&self, workload: &WorkloadRef) -> Vec<String>;

    /// Data's follow-up issue. The default: profiling steps for the app's language.
    fn followup(&self, d: &Diagnosis, cx: &FollowupContext) -> IssueDraft {
        crate::followup::profiling(d, cx, "performance")
    }

    /// Whether the application's code is the first suspect (Data's findings rank higher).
    fn code_is_prime_suspect(&self) -> bool {
        false
    }

    /// What Data reads the application's code for.
    fn code_focus(&self) -> CodeFocus {
        CodeFocus::Allocation
    }
}

/// The default verdict of a family: [`crate::verdict::ready_and_stable`] over the team's
/// projection, memory that follows traffic at the rate the diagnosis measured not projected.
pub fn default_verdict(d: &Diagnosis, obs: &Observation, rules: &Rules<'_>) -> Verification {
    crate::verdict::ready_and_stable(
        obs,
        rules.verification.projection_hours,
        d.signals.memory.as_ref().map_or(0.0, |m| m.mib_per_rps),
    )
}

/// What Data reads the application's code for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeFocus {
    /// Places that can grow without bound, and the runtime's memory flags.
    Allocation,
    /// The configuration the code reads (environment variables), against what the manifest sets.
    Configuration,
}

/// What a family's `detect` concluded.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    pub summary: String,
    /// 0.0 – 1.0.
    pub confidence: f64,
    pub recommendations: Vec<String>,
    /// Evidence of the family's own, after the shared readings'.
    pub evidence: Vec<squad_protocols::Evidence>,
    /// Measurements of the family's own, kept on the diagnosis under its root cause.
    pub signals: Option<Value>,
}

impl Detection {
    pub fn new(summary: String, confidence: f64, recommendations: &[&str]) -> Detection {
        Detection {
            summary,
            confidence,
            recommendations: recommendations.iter().map(|r| (*r).to_owned()).collect(),
            evidence: Vec::new(),
            signals: None,
        }
    }
}

/// The team's rules, from `squad.toml`.
#[derive(Debug, Clone, Copy)]
pub struct Rules<'a> {
    pub remediation: &'a RemediationSettings,
    pub verification: &'a VerificationSettings,
}

impl<'a> Rules<'a> {
    pub fn of(settings: &'a squad_config::Settings) -> Rules<'a> {
        Rules {
            remediation: &settings.remediation,
            verification: &settings.verification,
        }
    }
}

/// What a remedy needs read from the GitOps repository.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RepoNeeds {
    /// The workload's manifest.
    pub manifest: bool,
    /// The manifest's versions on the default branch (a change to undo).
    pub history: bool,
}

impl RepoNeeds {
    /// Nothing: the family changes no file.
    pub const NONE: RepoNeeds = RepoNeeds {
        manifest: false,
        history: false,
    };
    /// The workload's manifest only.
    pub const MANIFEST: RepoNeeds = RepoNeeds {
        manifest: true,
        history: false,
    };
}

/// What a family's verdict reads beyond the default observation (each best effort: what cannot
/// be read is left empty, and the verdict says so).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VerifyNeeds {
    /// The container's CFS throttling over the window.
    pub throttling: bool,
    /// How full the pods' volumes are.
    pub volumes: bool,
    /// The namespace's Services with their endpoints.
    pub services: bool,
    /// The namespace's HPAs with their status.
    pub hpas: bool,
    /// The namespace's claims with their phase.
    pub claims: bool,
}

/// What a remedy needs read from the cluster. A read it needs that fails fails the remedy
/// (retried when the failure is transient), except the HPA list, whose failure it works around.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClusterNeeds {
    /// The namespace's HorizontalPodAutoscalers.
    pub hpas: bool,
    /// The workload as it runs (replicas).
    pub workload: bool,
    /// The namespace's Secrets' key names (never values).
    pub secret_keys: bool,
}

/// A decision a model may take instead of the family's rule, as JSON with its schema.
#[derive(Debug, Clone)]
pub struct Proposal {
    /// What the model is asked to decide, in one or two sentences.
    pub task: String,
    /// The measurements and the rule, for the model.
    pub context: String,
    /// The JSON Schema of the answer (as schemars writes it; the agent loop makes it strict).
    pub schema: Value,
    /// The rule's own answer, as the model reads it (pretty JSON, in the type's field order).
    pub proposal: String,
    /// Reads a model's answer text into the proposal's type (given back as JSON).
    pub parse: fn(&str) -> Result<Value, Rejection>,
}

/// Reads a model's answer as a `T` (see [`squad_protocols::llm::parse_answer`]), as JSON.
pub fn parse_as<T: serde::de::DeserializeOwned + serde::Serialize>(
    text: &str,
) -> Result<Value, Rejection> {
    let answer: T = squad_protocols::llm::parse_answer(text)?;
    serde_json::to_value(answer).map_err(|e| Rejection(e.to_string()))
}

/// A model's answer that passed [`Family::check_proposal`], and which model gave it.
#[derive(Debug, Clone, Copy)]
pub struct Decision<'a> {
    pub answer: &'a Value,
    pub model: &'a str,
}

/// The workload's manifest in the GitOps repository, and what the family asked to read with it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RepoView {
    /// The manifest's path.
    pub path: String,
    pub text: String,
    /// Its versions on the default branch, newest first (when asked for).
    pub history: Vec<FileVersion>,
    /// The files that render the manifest into the workload's namespace, the one that wins
    /// first: a Kustomize repository's kustomizations, or a Helm chart's values files for the
    /// environment (the manifest is then the chart's template), with their versions (when the
    /// history is asked for).
    pub layers: Vec<Layer>,
    /// The other objects the family asked for ([`Family::repo_objects`]), where they are declared.
    pub objects: Vec<RepoObject>,
}

impl RepoView {
    /// The object of that kind and name, when the family asked for it and the repository declares it.
    pub fn object(&self, kind: &str, name: &str) -> Option<&RepoObject> {
        self.objects
            .iter()
            .find(|o| o.kind == kind && o.name == name)
    }

    /// The workload's manifest as an object of the repository.
    pub fn workload(&self, w: &WorkloadRef) -> RepoObject {
        RepoObject {
            kind: w.kind.clone(),
            name: w.name.clone(),
            path: self.path.clone(),
            text: self.text.clone(),
            history: self.history.clone(),
        }
    }
}

/// An object of the repository and the file that declares it, with the file's versions on the
/// default branch (newest first; when the history is asked for).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RepoObject {
    pub kind: String,
    pub name: String,
    pub path: String,
    pub text: String,
    pub history: Vec<FileVersion>,
}

impl RepoObject {
    /// The object's document now, as JSON.
    pub fn document(&self) -> Option<Value> {
        squad_gitops::objects::parse(&self.path, &self.text)
            .ok()?
            .into_iter()
            .find(|o| {
                squad_gitops::objects::kind(o) == self.kind
                    && squad_gitops::objects::name(o) == self.name
            })
    }
}

/// A file that shapes how the manifest renders for the environment — a kustomization, or a Helm
/// values file — with its versions on the default branch (newest first).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Layer {
    pub path: String,
    pub history: Vec<FileVersion>,
    /// For a Helm values file: the key that feeds the container's image tag in the chart's
    /// template (`image.tag`).
    pub image_tag: Option<Vec<String>>,
}

/// What the cluster said, read for the remedy (each only when the family asked).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ClusterView {
    pub hpas: Option<Result<Vec<HpaInfo>, String>>,
    pub workload: Option<WorkloadInfo>,
    pub secret_keys: Option<Vec<(String, Vec<String>)>>,
}

/// Everything a remedy decides from.
#[derive(Debug, Clone, Copy)]
pub struct RemedyInput<'a> {
    pub workload: &'a WorkloadRef,
    pub repo: &'a RepoView,
    pub cluster: &'a ClusterView,
    pub rules: Rules<'a>,
    /// The model's decision, when one was taken and held.
    pub decision: Option<Decision<'a>>,
}

pub use squad_gitops::Edit;

/// The fix a family proposes.
#[derive(Debug, Clone, PartialEq)]
pub enum Remedy {
    /// A pull request.
    Change(Change),
    /// No manifest change is the fix; the reason says what a human must decide.
    Escalate { reason: String },
    /// The family has no infrastructure fix (nothing to change in the manifests).
    Nothing,
}

impl Remedy {
    /// The escalation of a family whose fix has not been built yet: the diagnosis, and what a
    /// human must do meanwhile.
    pub fn not_yet(what: &str, d: &squad_protocols::Diagnosis, human: &str) -> Remedy {
        Remedy::Escalate {
            reason: format!(
                "squad has no remediation for {what} yet ({}); {human}",
                d.summary
            ),
        }
    }
}

impl Remedy {
    /// The escalation of a failure a pull request to the workload's manifests is the wrong tool
    /// for: who owns the fix, and what they decide.
    pub fn owned_by(owner: &str, d: &squad_protocols::Diagnosis, decides: &str) -> Remedy {
        Remedy::Escalate {
            reason: format!(
                "a pull request to the workload's manifests is the wrong tool here ({}): the owner is {owner}, who {decides}",
                d.summary
            ),
        }
    }
}

/// A pull request's content: what to edit and what to say.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The branch is `squad/<incident>-<branch_word>`.
    pub branch_word: String,
    pub title: String,
    pub edits: Vec<Edit>,
    /// Markdown for the PR body and the comment on the incident issue.
    pub notes: String,
    pub findings: Vec<Finding>,
}

/// A runbook's text (the template's slots).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Runbook {
    /// `docs/runbooks/<name>.md`.
    pub name: String,
    pub meaning: String,
    pub checks: String,
    pub fixes: String,
}

/// Family-specific measurements on a diagnosis, typed by the family that wrote them.
pub fn family_signals<T: serde::de::DeserializeOwned>(d: &Diagnosis) -> Option<T> {
    d.signals
        .family
        .get(d.root_cause.as_str())
        .and_then(|v| serde_json::from_value(v.clone()).ok())
}
