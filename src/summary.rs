//! The machine-readable summary of a simulated incident (`squad simulate --json`), and its
//! human rendering. Field names are stable.

use std::path::Path;

use serde::Serialize;
use squad_protocols::forge::ForgeItem;
use squad_protocols::{Incident, IncidentEvent, PrState};

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub incident: String,
    pub scenario: String,
    pub state: String,
    pub repo: String,
    pub dry_run: bool,
    pub diagnosis: Option<DiagnosisSummary>,
    pub issues: Vec<IssueSummary>,
    pub pull_requests: Vec<PrSummary>,
    pub verification: Option<squad_protocols::Verification>,
    /// The GitHub-compatible API the GitOps repository lives on (`--github-url`), when it is not
    /// the built-in simulated GitHub.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub github: Option<String>,
    /// Requests the crew's GitHub adapter sent to the simulated GitHub in this run, by endpoint.
    pub github_requests: std::collections::BTreeMap<String, usize>,
    /// Model calls per crew member (zeros where the deterministic skills decided alone).
    pub llm_usage: std::collections::BTreeMap<String, squad_protocols::LlmUsage>,
    pub timeline: Vec<TimelineEntry>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DiagnosisSummary {
    pub source: String,
    pub summary: String,
    pub root_cause: String,
    pub evidence: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback_reason: Option<String>,
    /// HolmesGPT's figures against squad's own reading: agreements and disagreements.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cross_check: Vec<String>,
    /// The diagnoser's model usage (HolmesGPT's own LLM calls).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<squad_protocols::Usage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct IssueSummary {
    pub number: u64,
    pub title: String,
    pub labels: Vec<String>,
    pub state: String,
    pub body: String,
    pub comments: Vec<CommentSummary>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CommentSummary {
    pub author: String,
    pub body: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct PrSummary {
    pub number: u64,
    /// Where a reviewer opens it.
    pub url: String,
    pub title: String,
    pub branch: String,
    pub base: String,
    pub state: String,
    pub files: Vec<String>,
    pub body: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct TimelineEntry {
    pub at: String,
    pub actor: String,
    pub event: String,
}

/// The crew member a body's hidden marker names (`<!-- squad:inc-1:worf:security-review -->`).
pub fn author_of(body: &str, incident: &str) -> String {
    let needle = format!("<!-- squad:{incident}:");
    body.find(&needle)
        .and_then(|i| body[i + needle.len()..].split(':').next())
        .map(str::to_owned)
        .unwrap_or_else(|| "unknown".into())
}

impl Summary {
    pub fn build(
        scenario: &str,
        incident: &Incident,
        events: &[IncidentEvent],
        forge: &[ForgeItem],
        repo: &Path,
        dry_run: bool,
    ) -> Summary {
        let id = incident.id.as_str();
        let ours = |body: &str| body.contains(&format!("<!-- squad:{id}:"));
        Summary {
            incident: id.into(),
            scenario: scenario.into(),
            state: incident.state.as_str().into(),
            repo: repo.display().to_string(),
            dry_run,
            diagnosis: incident.diagnosis.as_ref().map(|d| DiagnosisSummary {
                source: match d.source {
                    squad_protocols::DiagnosisSource::Native => "native".into(),
                    squad_protocols::DiagnosisSource::Holmesgpt => "holmesgpt".into(),
                },
                summary: d.summary.clone(),
                root_cause: d.root_cause.as_str().into(),
                evidence: d
                    .evidence
                    .iter()
                    .map(|e| format!("{}: {}", e.source, e.observation))
                    .collect(),
                fallback_reason: d.fallback_reason.clone(),
                cross_check: d.cross_check.clone(),
                usage: d.usage,
                cost_usd: d.cost_usd,
            }),
            issues: forge
                .iter()
                .filter(|i| i.pull.is_none() && ours(&i.body))
                .map(|i| IssueSummary {
                    number: i.number,
                    title: i.title.clone(),
                    labels: i.labels.clone(),
                    state: if i.open {
                        "open".into()
                    } else {
                        "closed".into()
                    },
                    body: i.body.clone(),
                    comments: i
                        .comments
                        .iter()
                        .map(|c| CommentSummary {
                            author: author_of(c, id),
                            body: c.clone(),
                        })
                        .collect(),
                })
                .collect(),
            pull_requests: forge
                .iter()
                .filter(|p| ours(&p.body))
                .filter_map(|p| p.pull.as_ref().map(|pull| (p, pull)))
                .map(|(p, pull)| PrSummary {
                    number: p.number,
                    url: p.url.clone(),
                    title: p.title.clone(),
                    branch: pull.branch.clone(),
                    base: pull.base.clone(),
                    state: match pull.state {
                        PrState::Open => "open",
                        PrState::Merged => "merged",
                        PrState::Closed => "closed",
                    }
                    .into(),
                    files: pull.files.clone(),
                    body: p.body.clone(),
                })
                .collect(),
            verification: incident.verification.clone(),
            github: None,
            github_requests: Default::default(),
            llm_usage: squad_protocols::Member::ALL
                .iter()
                .map(|m| {
                    (
                        m.id().to_string(),
                        incident.llm_usage.get(m).copied().unwrap_or_default(),
                    )
                })
                .collect(),
            timeline: events
                .iter()
                .map(|e| TimelineEntry {
                    at: e.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    actor: e.author.as_str().into(),
                    event: e.kind.describe(),
                })
                .collect(),
        }
    }

    /// What a person reads in the terminal.
    pub fn render(&self) -> String {
        let mut s = format!(
            "squad simulate {} — incident {} is {}\n\n",
            self.scenario,
            self.incident,
            self.state.to_uppercase()
        );
        for t in &self.timeline {
            s.push_str(&format!("  {}  {:<8} {}\n", t.at, t.actor, t.event));
        }
        s.push_str("\nArtifacts\n");
        s.push_str(&format!(
            "  GitOps repo      {}   (git log --all --oneline; the PR is a branch)\n",
            self.repo
        ));
        for i in &self.issues {
            s.push_str(&format!(
                "  issue #{:<3}      {} [{}] ({}, {} comment(s))\n",
                i.number,
                i.title,
                i.labels.join(", "),
                i.state,
                i.comments.len()
            ));
        }
        for p in &self.pull_requests {
            s.push_str(&format!(
                "  PR #{:<3}         {} ({} → {}, {}): {}\n",
                p.number,
                p.title,
                p.branch,
                p.base,
                p.state,
                p.files.join(", ")
            ));
        }
        if self
            .llm_usage
            .values()
            .any(|u| u.calls > 0 || u.fallbacks > 0)
        {
            s.push_str("\nModel calls\n");
            for (m, u) in &self.llm_usage {
                if u.calls == 0 && u.fallbacks == 0 {
                    continue;
                }
                s.push_str(&format!(
                    "  {m:<8} {} call(s), {} prompt + {} completion tokens, {} fallback(s){}\n",
                    u.calls,
                    u.prompt_tokens,
                    u.completion_tokens,
                    u.fallbacks,
                    u.estimated_cost_usd
                        .map_or(String::new(), |c| format!(", ~${c:.4}"))
                ));
            }
        }
        if let Some(v) = &self.verification {
            s.push_str(&format!(
                "\nVerification: {} — {}\n",
                if v.healthy { "healthy" } else { "NOT healthy" },
                v.detail
            ));
        }
        let open_pr = self.pull_requests.iter().find(|p| p.state == "open");
        if let (Some(github), "awaiting_approval", Some(pr)) =
            (&self.github, self.state.as_str(), open_pr)
        {
            s.push_str(&format!(
                "\nNext: PR #{} is open on {github}: {}. Review and merge it there (or close it), then run this command again: Ralph reads it there and verifies the fix in the cluster.\n",
                pr.number, pr.url
            ));
            return s;
        }
        s.push_str(match self.state.as_str() {
            "awaiting_approval" => "\nNext: review the PR (git diff main...<branch> in the repo), then run again with --approve to merge it as a human would.\n",
            "resolved" => "\nResolved: the fix is merged and verified in the cluster.\n",
            "escalated" => "\nEscalated: the crew could not close this on its own; a human must decide (see the issue).\n",
            _ => "",
        });
        s
    }
}
