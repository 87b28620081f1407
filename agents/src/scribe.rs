//! Scribe — memory: the decision record under `.squad/decisions/`, the runbook under
//! `docs/runbooks/`, and the incident report; and recall of past incidents for the next one.

use async_trait::async_trait;
use squad_config::{charters, templates};
use squad_diagnosis::{Runbook, families};
use squad_protocols::{Action, Assignment, FileChange, Member, Report};

use squad_protocols::llm::Rejection;
use squad_runtime::CrewError;

use crate::mind::{self, Ask, Tool};
use crate::specialist::Skill;
use crate::{CrewContext, effects};

pub fn charter() -> &'static str {
    charters::charter(Member::Scribe)
}

pub struct Scribe;

use crate::memory::DECISIONS;

/// What Scribe's model distils from the incident for the record.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Lessons {
    /// What the team should remember from this incident, one sentence each (1 to 5).
    pub lessons: Vec<String>,
}

/// The tools Scribe's model may use.
pub const TOOLS: &[Tool] = &[Tool::GitopsListFiles, Tool::GitopsReadFile];

pub fn check_lessons(l: &Lessons) -> Result<(), Rejection> {
    if l.lessons.is_empty() || l.lessons.len() > 5 {
        return Err(Rejection::from(format!(
            "{} lessons; expected 1 to 5",
            l.lessons.len()
        )));
    }
    for (i, lesson) in l.lessons.iter().enumerate() {
        mind::clean_text(lesson, 300, &format!("lessons[{i}]"))?;
        if l.lessons[..i].contains(lesson) {
            return Err(Rejection::from(format!(
                "lessons[{i}] repeats an earlier lesson"
            )));
        }
    }
    Ok(())
}

/// The runbook's text for a family, from the template.
fn runbook_body(alert: &str, runbook: &Runbook) -> String {
    templates::render(
        templates::RUNBOOK,
        &[
            ("alert", alert),
            ("meaning", &runbook.meaning),
            ("checks", &runbook.checks),
            ("fixes", &runbook.fixes),
        ],
    )
}

#[async_trait]
impl Skill for Scribe {
    fn member(&self) -> Member {
        Member::Scribe
    }

    async fn perform(&self, ctx: &CrewContext, a: &Assignment) -> Result<Report, CrewError> {
        let incident = ctx.journal.load(&a.incident)?;
        let base = ctx.forge.default_branch().await?;
        let d = &a.diagnosis;
        let family = families::of(&d.root_cause);
        let runbook = family.runbook(&a.alert_name);
        let date = incident.opened_at.format("%Y-%m-%d").to_string();
        let pr = a.reports.iter().find_map(|r| r.opened_pr().cloned());
        let pr_text = pr.as_ref().map_or("none".to_owned(), |p| {
            format!("PR #{} ({})", p.number, p.branch)
        });
        let belanna = a.reports.iter().find(|r| r.member == Member::Belanna);
        let slug = format!("{}-{}", a.workload.name, runbook.name);

        // Decision record: one file per decision, and the shared decisions.md (Squad's layout).
        let decision = templates::render(
            templates::DECISION,
            &[
                ("date", &date),
                (
                    "topic",
                    &format!(
                        "{} on {}/{}",
                        runbook.name, a.workload.namespace, a.workload.name
                    ),
                ),
                ("by", "B'Elanna (infrastructure), recorded by Scribe"),
                (
                    "what",
                    &belanna.map_or("no manifest change".to_owned(), |r| r.summary.clone()),
                ),
                ("why", &d.summary),
                ("incident", a.incident.as_str()),
                ("issue", &format!("#{}", a.issue.number)),
            ],
        );
        let thought = mind::deliberate(
            ctx,
            Ask {
                member: Member::Scribe,
                assignment: a,
                task: "Distil what the team should remember from this incident for the decision record (1 to 5 lessons, one sentence each).".into(),
                context: format!(
                    "Decision: {}\nRunbook: docs/runbooks/{}.md",
                    belanna.map_or("no manifest change".to_owned(), |r| r.summary.clone()),
                    runbook.name
                ),
                proposal: Lessons {
                    lessons: family.lessons(&a.workload),
                },
                tools: TOOLS,
            },
            check_lessons,
        )
        .await;
        let decision = match &thought.by_model {
            Some(model) => {
                let lessons: String = thought
                    .answer
                    .lessons
                    .iter()
                    .map(|l| format!("- {}\n", l.trim()))
                    .collect();
                format!(
                    "{}\n\n**Lessons** (with {model}):\n{lessons}",
                    decision.trim_end()
                )
            }
            None => decision,
        };
        let decision_path = format!(".squad/decisions/{date}-{slug}.md");
        let mut decisions = ctx
            .forge
            .read_file(DECISIONS, &base)
            .await?
            .unwrap_or_else(|| {
                "# Decisions\n\nShared decision record of the team (merged by Scribe).\n".into()
            });
        if !decisions.contains(a.incident.as_str()) {
            decisions = format!("{}\n\n{}", decisions.trim_end(), decision.trim_end()) + "\n";
        }

        // Runbook: created from the template, then one history line per incident.
        let runbook_path = format!("docs/runbooks/{}.md", runbook.name);
        let mut runbook = ctx
            .forge
            .read_file(&runbook_path, &base)
            .await?
            .unwrap_or_else(|| runbook_body(&a.alert_name, &runbook));
        let line = format!(
            "- {date} [{}] {} ({}): {} → {}",
            a.incident, a.workload, a.alert_name, d.summary, pr_text
        );
        if !runbook.contains(a.incident.as_str()) {
            runbook = format!("{}\n{line}\n", runbook.trim_end());
        }

        // Incident report.
        let actions: String = a
            .reports
            .iter()
            .map(|r| {
                format!(
                    "- **{}** ({}): {}\n",
                    r.member.display_name(),
                    r.member.role(),
                    r.summary
                )
            })
            .collect();
        let findings: String = a
            .reports
            .iter()
            .flat_map(|r| {
                r.findings.iter().map(move |f| {
                    format!(
                        "- [{}] {} ({}): {}\n",
                        f.severity.as_str(),
                        f.title,
                        r.member.display_name(),
                        f.detail
                    )
                })
            })
            .collect();
        let timeline: String = ctx
            .journal
            .store()
            .events(&a.incident)?
            .iter()
            .map(|e| {
                format!(
                    "- {} {}: {}\n",
                    e.at.to_rfc3339(),
                    e.author.as_str(),
                    e.kind.describe()
                )
            })
            .collect();
        let evidence: String = d
            .evidence
            .iter()
            .map(|e| format!("- **{}:** {}\n", e.source, e.observation))
            .collect();
        let report_path = format!("docs/incidents/{date}-{}.md", a.incident);
        let report = templates::render(
            templates::INCIDENT_REPORT,
            &[
                ("title", &incident.title()),
                ("incident", a.incident.as_str()),
                ("workload", &a.workload.to_string()),
                ("alert", &a.alert_name),
                ("opened", &incident.opened_at.to_rfc3339()),
                ("state", incident.state.as_str()),
                ("issue", &format!("#{}", a.issue.number)),
                ("pr", &pr_text),
                ("diagnosis", &format!("{}\n\n{evidence}", d.summary)),
                ("actions", &actions),
                (
                    "findings",
                    if findings.is_empty() {
                        "none"
                    } else {
                        &findings
                    },
                ),
                ("timeline", &timeline),
            ],
        );
        let files = vec![
            FileChange {
                path: decision_path.clone(),
                content: decision,
            },
            FileChange {
                path: DECISIONS.into(),
                content: decisions,
            },
            FileChange {
                path: runbook_path.clone(),
                content: runbook,
            },
            FileChange {
                path: report_path.clone(),
                content: report,
            },
        ];
        let paths: Vec<String> = files.iter().map(|f| f.path.clone()).collect();
        effects::commit_once(
            ctx,
            &a.incident,
            Member::Scribe,
            "memory",
            &base,
            &format!(
                "docs(squad): record incident {} on {}",
                a.incident, a.workload
            ),
            files,
        )
        .await?;
        effects::comment_once(
            ctx,
            &a.incident,
            Member::Scribe,
            "memory-links",
            a.issue.number,
            &format!("**Scribe** (memory): recorded on `{base}`:\n- decision record `{decision_path}` (and `{DECISIONS}`)\n- runbook `{runbook_path}`\n- incident report `{report_path}`"),
        )
        .await?;
        let mut r = Report::new(
            Member::Scribe,
            format!("decision record, runbook {runbook_path} and incident report committed"),
        );
        r.actions.push(Action::CommittedFiles {
            branch: base,
            paths,
        });
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn lessons(l: &[&str]) -> Lessons {
        Lessons {
            lessons: l.iter().map(|s| (*s).into()).collect(),
        }
    }

    #[test]
    fn the_record_takes_one_to_five_distinct_lessons() {
        assert!(check_lessons(&lessons(&["Size memory from the measured peak."])).is_ok());
        assert!(check_lessons(&lessons(&[])).is_err());
        assert!(check_lessons(&lessons(&["Alert at 80% of the limit."; 6])).is_err());
        assert!(
            check_lessons(&lessons(&[
                "Alert at 80% of the limit.",
                "Alert at 80% of the limit."
            ]))
            .unwrap_err()
            .0
            .contains("repeats")
        );
        assert!(check_lessons(&lessons(&["short"])).is_err());
    }

    #[test]
    fn the_runbook_is_the_familys_rendered_from_the_template() {
        let body = runbook_body(
            "KubernetesPodOOMKilled",
            &families::of(&squad_protocols::RootCause::from_static("memory_leak"))
                .runbook("KubernetesPodOOMKilled"),
        );
        assert!(
            body.contains("KubernetesPodOOMKilled") && body.contains("OOMKilled"),
            "{body}"
        );
    }
}
