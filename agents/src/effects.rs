//! Side effects on the forge, each done once per incident through the journal and marked so a
//! retry after a crash finds what the first attempt made.
//!
//! Every title, body and commit message passes the incident's redactor first (the gateway's,
//! which knows the namespace's Secret values and the configured patterns): whoever wrote the
//! text, and whatever it quotes (a manifest's lines, a log line, a tool's output), what squad
//! writes on the forge never carries a secret. File contents are the change itself and are
//! written as they are.

use squad_protocols::forge::marker;
use squad_protocols::{
    Action, Author, FileChange, IncidentId, IssueRef, IssueSpec, Member, PrRef, PrSpec,
};
use squad_runtime::CrewError;
use squad_runtime::ports::{MarkedArtifact, PortError};

use crate::CrewContext;

fn key(member: Member, what: &str) -> String {
    format!("{}:{what}", member.id())
}

/// Performs a marked forge effect once: the body gets the hidden marker, a retry after a crash
/// looks the marker up (`found` picks the artifact of the right kind) before doing it again.
async fn marked_once<Perform, Fut>(
    ctx: &CrewContext,
    incident: &IncidentId,
    member: Member,
    what: &str,
    description: &str,
    found: impl FnOnce(MarkedArtifact) -> Option<Action>,
    perform: Perform,
) -> Result<Action, CrewError>
where
    Perform: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = Result<Action, PortError>>,
{
    let key = key(member, what);
    let mark = marker(incident.as_str(), &key);
    ctx.journal
        .once(
            incident,
            Author::from(member),
            &key,
            description,
            || async {
                let hit = ctx.forge.find_marker(&mark).await?;
                Ok(hit.and_then(found))
            },
            || perform(mark.clone()),
        )
        .await
        .map_err(CrewError::from)
}

/// The incident's redactor: the gateway's, seeded once with the values of the Secrets of the
/// incident's namespace.
pub async fn redactor(
    ctx: &CrewContext,
    incident: &IncidentId,
) -> Result<std::sync::Arc<squad_runtime::Redactor>, String> {
    let namespace = ctx
        .journal
        .load(incident)
        .map(|i| i.workload.namespace)
        .map_err(|e| e.to_string())?;
    crate::mind::redactor(ctx, incident, &namespace).await
}

/// `text` through the incident's redactor; if there is none (the incident is unknown to the
/// journal, which a crew writing about it cannot be), a note in its place, not the text.
pub async fn redacted(ctx: &CrewContext, incident: &IncidentId, text: &str) -> String {
    match redactor(ctx, incident).await {
        Ok(r) => r.redact(text),
        Err(e) => {
            tracing::warn!(%incident, "no redactor ({e}): the text is not written");
            "[not shown: the redaction gateway was unavailable]".to_owned()
        }
    }
}

fn with_marker(body: &str, mark: &str) -> String {
    format!("{}\n\n{mark}\n", body.trim_end())
}

/// Files an issue once; the body carries the hidden marker.
pub async fn issue_once(
    ctx: &CrewContext,
    incident: &IncidentId,
    member: Member,
    what: &str,
    spec: IssueSpec,
) -> Result<IssueRef, CrewError> {
    let spec = IssueSpec {
        title: redacted(ctx, incident, &spec.title).await,
        body: redacted(ctx, incident, &spec.body).await,
        ..spec
    };
    let title = spec.title.clone();
    let action = marked_once(
        ctx,
        incident,
        member,
        what,
        &format!("file issue \"{title}\""),
        |a| match a {
            MarkedArtifact::Issue(issue) => Some(Action::OpenedIssue {
                issue,
                title: title.clone(),
            }),
            _ => None,
        },
        |mark| {
            let spec = IssueSpec {
                body: with_marker(&spec.body, &mark),
                ..spec.clone()
            };
            let title = title.clone();
            async move {
                let issue = ctx.forge.create_issue(&spec).await?;
                Ok(Action::OpenedIssue { issue, title })
            }
        },
    )
    .await?;
    match action {
        Action::OpenedIssue { issue, .. } => Ok(issue),
        other => Err(CrewError::invalid(
            format!("{}:{what}", member.id()),
            format!("the journal holds {other:?}, expected an issue"),
        )),
    }
}

/// Comments on an issue once.
pub async fn comment_once(
    ctx: &CrewContext,
    incident: &IncidentId,
    member: Member,
    what: &str,
    issue: u64,
    body: &str,
) -> Result<(), CrewError> {
    let body = &redacted(ctx, incident, body).await;
    marked_once(
        ctx,
        incident,
        member,
        what,
        &format!("comment on issue #{issue}"),
        |a| match a {
            MarkedArtifact::Comment { issue, .. } => Some(Action::Commented { issue }),
            _ => None,
        },
        |mark| async move {
            ctx.forge.comment(issue, &with_marker(body, &mark)).await?;
            Ok(Action::Commented { issue })
        },
    )
    .await?;
    Ok(())
}

/// Opens a pull request once.
pub async fn pr_once(
    ctx: &CrewContext,
    incident: &IncidentId,
    member: Member,
    what: &str,
    spec: PrSpec,
) -> Result<PrRef, CrewError> {
    let spec = PrSpec {
        title: redacted(ctx, incident, &spec.title).await,
        body: redacted(ctx, incident, &spec.body).await,
        commit_message: redacted(ctx, incident, &spec.commit_message).await,
        ..spec
    };
    let title = spec.title.clone();
    let action = marked_once(
        ctx,
        incident,
        member,
        what,
        &format!("open pull request \"{title}\""),
        |a| match a {
            MarkedArtifact::PullRequest(pr) => Some(Action::OpenedPr {
                pr,
                title: title.clone(),
            }),
            _ => None,
        },
        |mark| {
            let spec = PrSpec {
                body: with_marker(&spec.body, &mark),
                ..spec.clone()
            };
            let title = title.clone();
            async move {
                let pr = ctx.forge.open_pr(&spec).await?;
                Ok(Action::OpenedPr { pr, title })
            }
        },
    )
    .await?;
    match action {
        Action::OpenedPr { pr, .. } => Ok(pr),
        other => Err(CrewError::invalid(
            format!("{}:{what}", member.id()),
            format!("the journal holds {other:?}, expected a pull request"),
        )),
    }
}

/// Commits files to a branch once. A retry after a crash compares the branch's files with what
/// it would write, so it never commits the same change twice.
pub async fn commit_once(
    ctx: &CrewContext,
    incident: &IncidentId,
    member: Member,
    what: &str,
    branch: &str,
    message: &str,
    files: Vec<FileChange>,
) -> Result<(), CrewError> {
    let message = &redacted(ctx, incident, message).await;
    let key = key(member, what);
    let paths: Vec<String> = files.iter().map(|f| f.path.clone()).collect();
    ctx.journal
        .once(
            incident,
            Author::from(member),
            &key,
            &format!("commit {} to {branch}", paths.join(", ")),
            || async {
                for f in &files {
                    if ctx.forge.read_file(&f.path, branch).await?.as_deref()
                        != Some(f.content.as_str())
                    {
                        return Ok(None);
                    }
                }
                Ok(Some(Action::CommittedFiles {
                    branch: branch.into(),
                    paths: paths.clone(),
                }))
            },
            || async {
                ctx.forge.commit_files(branch, message, &files).await?;
                Ok(Action::CommittedFiles {
                    branch: branch.into(),
                    paths: paths.clone(),
                })
            },
        )
        .await?;
    Ok(())
}

/// Opens or closes an issue once.
pub async fn set_issue_open_once(
    ctx: &CrewContext,
    incident: &IncidentId,
    member: Member,
    what: &str,
    issue: u64,
    open: bool,
) -> Result<(), CrewError> {
    let key = key(member, what);
    ctx.journal
        .once(
            incident,
            Author::from(member),
            &key,
            &format!("{} issue #{issue}", if open { "reopen" } else { "close" }),
            || async { Ok(None) },
            || async {
                ctx.forge.set_issue_open(issue, open).await?;
                Ok(if open {
                    Action::ReopenedIssue { issue }
                } else {
                    Action::ClosedIssue { issue }
                })
            },
        )
        .await?;
    Ok(())
}
