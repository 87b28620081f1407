//! Bad start: the container's process cannot be started, or its arguments are refused. Its `command` names an
//! executable the image does not hold, so the runtime fails every attempt
//! (`exec: "x": executable file not found in $PATH`; containerd reports `StartError`, exit 128;
//! Docker-era runtimes `ContainerCannotRun`/exit 127), the kubelet backs off and the pod
//! crash-loops with no logs. Almost always the last deploy changed the command or the image's
//! layout. Or the process starts and its flag parser rejects an argument the binary does not
//! define (Go: `flag provided but not defined: -x`, exit 2; argparse: `unrecognized arguments`;
//! cobra: `unknown flag`), typically args written for another version of the image. The fix is
//! the last deploy's command/args change undone (a command it added removed, so the image's
//! entrypoint runs); when that deploy changed the image too, lines written for the old image are
//! not proven on the new one, and the image goes back with them (`new_image`). Without a deploy
//! to undo the crew escalates. The proof is the container running, restarts flat.

mod new_image;

use serde::{Deserialize, Serialize};
use squad_protocols::{Diagnosis, Evidence, Member, RootCause, WorkloadRef};

use crate::{
    Detection, Facts, Family, FollowupContext, IssueDraft, Readings, Remedy, RemedyInput,
    RepoNeeds, Runbook, family_signals,
};

/// What the detection found, kept on the diagnosis for the remedy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BadStartSignals {
    pub container: String,
    /// The executable the runtime could not find, when that is the failure.
    pub executable: Option<String>,
    /// The argument the flag parser refused, when that is the failure.
    pub flag: Option<String>,
}

pub struct BadStart;

pub const ROOT_CAUSE: &str = "bad_start";

const NOT_FOUND: [&str; 2] = ["executable file not found", "no such file or directory"];

/// What flag parsers say before the argument they do not know.
const UNKNOWN_FLAG: [&str; 5] = [
    // Go's flag package.
    "flag provided but not defined: ",
    // Python's argparse.
    "unrecognized arguments: ",
    // cobra/pflag.
    "unknown flag: ",
    // getopt, commander and many others: `unknown option '--x'`, `unknown option: --x`.
    "unknown option",
    // The JVM launcher.
    "Unrecognized option: ",
];

/// The argument a flag parser rejected, from a log line.
pub fn rejected_flag(line: &str) -> Option<String> {
    UNKNOWN_FLAG.iter().find_map(|marker| {
        let rest = &line[line.find(marker)? + marker.len()..];
        let flag = rest
            .trim_start_matches([':', ' ', '\'', '"', '`'])
            .split([' ', '\'', '"', '`', ','])
            .next()?;
        flag.starts_with('-').then(|| flag.to_owned())
    })
}

fn words(command: &[String], args: &[String]) -> String {
    match (command.is_empty(), args.is_empty()) {
        (true, true) => "the image's entrypoint".into(),
        (true, false) => format!("the image's entrypoint with args [{}]", args.join(" ")),
        _ => {
            let all: Vec<&str> = command.iter().chain(args).map(String::as_str).collect();
            format!("[{}]", all.join(" "))
        }
    }
}

/// The last rollout's change of the container's command or args: (revision, ago, before).
fn command_change(facts: &Facts) -> Option<(u32, String, String)> {
    let c = crate::readings::last_rollout_change(facts, |r| {
        crate::readings::container_in(r, facts).map(|c| (c.command.clone(), c.args.clone()))
    })?;
    Some((c.revision, c.ago, words(&c.before.0, &c.before.1)))
}

/// The executable the runtime could not find, from its message (`exec: "x": …`).
fn executable(message: &str) -> Option<&str> {
    let rest = &message[message.find("exec: \"")? + 7..];
    rest.split('"').next()
}

/// What both ways of failing to start share: the termination as evidence, and the last rollout
/// that changed the command (evidence, confidence, and the recommendation `restore` writes from
/// the previous command). Returns the rollout's change as the summary's tail, in the words
/// `tail` writes from (how long ago, the previous command).
fn termination_and_rollout(
    facts: &Facts,
    term: &squad_protocols::cluster::Termination,
    now: &str,
    d: &mut Detection,
    restore: impl Fn(&str) -> String,
    tail: impl Fn(&str, &str) -> String,
) -> String {
    d.evidence.push(Evidence {
        source: "pod status".into(),
        observation: format!(
            "last termination {} (exit {}), {} restarts",
            term.reason,
            term.exit_code,
            facts.status().map_or(0, |s| s.restart_count)
        ),
    });
    let Some((revision, ago, before)) = command_change(facts) else {
        return String::new();
    };
    d.confidence = 0.95;
    d.evidence.push(Evidence {
        source: "rollout history".into(),
        observation: format!(
            "revision {revision} ({ago}) changed the command of {} from {before} to {now}",
            facts.container
        ),
    });
    d.recommendations.push(restore(&before));
    tail(&ago, &before)
}

/// The process started and its flag parser refused an argument: the log line, the exit.
fn refused_args(facts: &Facts, term: &squad_protocols::cluster::Termination) -> Option<Detection> {
    if term.reason != "Error" || !matches!(term.exit_code, 1 | 2) {
        return None;
    }
    let (line, flag) = facts
        .logs
        .iter()
        .rev()
        .find_map(|l| rejected_flag(l).map(|f| (l.clone(), f)))?;
    let spec = facts.info.container(&facts.container);
    let argv = spec.map_or("its args".to_owned(), |c| words(&c.command, &c.args));
    let mut d = Detection::new(String::new(), 0.85, &[]);
    d.evidence.push(Evidence {
        source: "container logs".into(),
        observation: line.clone(),
    });
    let rollout = termination_and_rollout(
        facts,
        term,
        &argv,
        &mut d,
        |before| {
            format!(
                "restore the command and args of the revision before the last deploy ({before}), or deploy the image version that defines {flag}"
            )
        },
        |ago, before| format!("; the last rollout ({ago}) changed them from {before}"),
    );
    d.recommendations.push(format!(
        "pass only flags the image's binary defines (`<binary> --help` in the image lists them); {flag} is not one"
    ));
    d.summary = format!(
        "{} exits at start (exit {}): its flag parser rejects {flag} in {argv}{rollout}",
        facts.container, term.exit_code
    );
    d.signals = serde_json::to_value(BadStartSignals {
        container: facts.container.clone(),
        executable: None,
        flag: Some(flag),
    })
    .ok();
    Some(d)
}

impl Family for BadStart {
    fn root_cause(&self) -> RootCause {
        RootCause::from_static(ROOT_CAUSE)
    }

    fn reason(&self) -> Option<&'static str> {
        Some("StartError")
    }

    fn detect(&self, facts: &Facts, _readings: &Readings) -> Option<Detection> {
        let term = facts.termination()?;
        if let Some(d) = refused_args(facts, term) {
            return Some(d);
        }
        let failed = facts
            .events
            .iter()
            .filter(|e| e.reason == "Failed" && NOT_FOUND.iter().any(|n| e.message.contains(n)))
            .max_by_key(|e| e.last_seen);
        let start_error = matches!(term.reason.as_str(), "StartError" | "ContainerCannotRun")
            || matches!(term.exit_code, 127 | 128);
        if !start_error || failed.is_none() && term.exit_code != 127 {
            return None;
        }
        let spec = facts.info.container(&facts.container);
        let command = spec.map_or("its command".to_owned(), |c| words(&c.command, &c.args));
        let mut d = Detection::new(String::new(), 0.9, &[]);
        let missing = failed
            .and_then(|e| executable(&e.message))
            .map(str::to_owned);
        if let Some(e) = failed {
            d.evidence.push(Evidence {
                source: "kubelet events".into(),
                observation: format!(
                    "{} ({} times since {})",
                    e.message,
                    e.count,
                    e.first_seen.to_rfc3339()
                ),
            });
        }
        let rollout = termination_and_rollout(
            facts,
            term,
            &command,
            &mut d,
            |before| {
                format!("restore the command of the revision before the last deploy ({before})")
            },
            |ago, before| format!("; the last rollout ({ago}) changed it from {before}"),
        );
        d.recommendations.push(
            "run the command the image provides (`docker run --entrypoint sh <image> -c 'ls -l <path>'` shows what is there)".into(),
        );
        d.summary = format!(
            "{} never starts: the image has no {} to run {command}{rollout}",
            facts.container,
            missing
                .as_ref()
                .map_or("executable".to_owned(), |m| format!("executable {m}"))
        );
        d.signals = serde_json::to_value(BadStartSignals {
            container: facts.container.clone(),
            executable: missing,
            flag: None,
        })
        .ok();
        Some(d)
    }

    fn routing(&self) -> &'static [(Member, &'static str)] {
        &[
            (
                Member::Belanna,
                "the container's command and args against the last revision that ran",
            ),
            (
                Member::Worf,
                "whether the image that ran is the image that was built",
            ),
            (
                Member::Data,
                "where the build puts the binary, and what the image's entrypoint is",
            ),
        ]
    }

    fn repo_needs(&self) -> RepoNeeds {
        RepoNeeds {
            manifest: true,
            history: true,
        }
    }

    fn remedy(&self, d: &Diagnosis, input: &RemedyInput<'_>) -> Remedy {
        let s: Option<BadStartSignals> = family_signals(d);
        // A refused flag is in the args or the command; an executable the image lacks is the
        // command's (the args and the image the deploy shipped stay).
        let (keys, why): (&[&str], String) = match &s {
            Some(BadStartSignals {
                flag: Some(flag), ..
            }) => (
                &["args", "command"],
                format!("The container's flag parser rejects `{flag}`"),
            ),
            Some(BadStartSignals {
                executable: Some(exe),
                ..
            }) => (
                &["command"],
                format!("The image holds no executable `{exe}` to run"),
            ),
            _ => (
                &["command"],
                "The runtime cannot start the container's command".to_owned(),
            ),
        };
        let container = s.as_ref().map(|s| s.container.as_str());
        const FINDING: &str = "the deploy changed how the container starts";
        match crate::undo::find(input.repo, input.workload, container, keys) {
            // Lines written for the image before the deploy go back with that image.
            Some(undo) => Remedy::Change(
                new_image::revert_with_image(input.repo, input.workload, &undo, &why, FINDING)
                    .unwrap_or_else(|| undo.change(input.workload, &why, FINDING)),
            ),
            None => Remedy::Escalate {
                reason: format!(
                    "the last deploy of {} did not change the container's {}: the image changed under it, and which command it means to run is for its owner to say ({})",
                    input.repo.path,
                    keys.join(" or "),
                    d.summary
                ),
            },
        }
    }

    /// The restored command or args do not start the container in the replay either: the image
    /// the pods run does not hold that executable or define those flags, and which command it
    /// means to run is its owners' to say.
    fn replay_failed(&self, d: &Diagnosis, replay: &squad_protocols::Replay) -> Option<String> {
        let s: BadStartSignals = family_signals(d)?;
        let waiting = format!("{} waiting: ", s.container);
        let still = replay
            .with
            .not_ready
            .iter()
            .find(|p| p.contains(&waiting))?;
        Some(format!(
            "the owner is the app's owners, who say which command and args the image runs: with the fix the container still does not start in the replay ({still}), so the {} it restores is not one the image the pods run {} (the image may have changed its layout or flags since; `docker run --rm --entrypoint sh <image> -c 'ls -l <path>'` or `<binary> --help` in the image shows what it holds)",
            if s.flag.is_some() {
                "command or args"
            } else {
                "command"
            },
            if s.flag.is_some() { "defines" } else { "holds" },
        ))
    }

    fn runbook(&self, _alert: &str) -> Runbook {
        Runbook {
            name: "starterror-command-not-found".into(),
            meaning: "The runtime cannot start the container's process: the command names an executable the image does not hold (`exec: \"x\": executable file not found in $PATH`). Every attempt fails at once (containerd: `StartError`, exit 128), the kubelet backs off, and the pod crash-loops with nothing in its logs.".into(),
            checks: "1. `kubectl describe pod <pod> -n <ns>` — Last State `StartError` and the `Failed` event's message naming the executable.\n2. `kubectl get pod <pod> -n <ns> -o jsonpath='{.spec.containers[*].command}'` against the image: `docker run --rm --entrypoint sh <image> -c 'ls -l <path>; echo $PATH'`.\n3. The GitOps diff of the last deploy (command/args) and the image's Dockerfile (ENTRYPOINT, where the binary is copied).".into(),
            fixes: "- **Wrong path or name**: the command of the last revision that ran, through a PR.\n- **The image changed layout**: fix the Dockerfile or point the command at the new path; prefer the image's ENTRYPOINT over a repeated `command`.".into(),
        }
    }

    fn lessons(&self, workload: &WorkloadRef) -> Vec<String> {
        vec![
            format!(
                "Start {workload}'s image with the manifest's command in CI before a deploy merges."
            ),
            "Let the image's ENTRYPOINT carry the command, so manifests and images cannot disagree.".into(),
        ]
    }

    fn followup(&self, _d: &Diagnosis, cx: &FollowupContext) -> IssueDraft {
        IssueDraft {
            title: format!(
                "Start {}'s image with its manifest command in CI",
                cx.workload.name
            ),
            body: format!(
                "During incident {} (#{}) the container could not start: its command names an executable the image does not hold.\n\n\
                 1. In CI, run the rendered manifest's command and args in the built image (`docker run --rm --entrypoint <command> <image> --help` or a smoke test) and fail on exit 126/127/128.\n\
                 2. Move the command into the image's ENTRYPOINT and drop `command:` from the manifest.\n\
                 3. Reproduce: `kubectl describe pod -n {} {}` (Last State, Events).",
                cx.incident, cx.issue, cx.workload.namespace, cx.pod
            ),
            label: "reliability".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use squad_protocols::cluster::ClusterEvent;

    use super::*;
    use crate::testing;

    fn not_found(cmd: &str) -> Facts {
        let mut f = testing::facts("StartError", 128, |_| 80.0, |_| 10.0);
        f.info.containers[0].command = vec![cmd.into()];
        f.history.last_mut().unwrap().containers[0].command = vec![cmd.into()];
        f.history[0].containers[0].command = vec!["/app/cart".into()];
        f.events = vec![ClusterEvent {
            kind: "Warning".into(),
            reason: "Failed".into(),
            message: format!(
                "Error: failed to create containerd task: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: exec: \"{cmd}\": executable file not found in $PATH: unknown"
            ),
            count: 12,
            first_seen: testing::now() - chrono::Duration::minutes(50),
            last_seen: testing::now(),
            object: "Pod/cart-5d8f7-abcde".into(),
        }];
        f
    }

    #[test]
    fn args_the_binary_does_not_define_are_named_with_the_deploy() {
        let mut f = testing::crashing(&["flag provided but not defined: -metrics.listen-address"]);
        f.pod.as_mut().unwrap().containers[0]
            .last_termination
            .as_mut()
            .unwrap()
            .exit_code = 2;
        let args = vec!["--metrics.listen-address=:9102".to_owned()];
        f.info.containers[0].args = args.clone();
        f.history[1].containers[0].args = args;
        f.history[0].containers[0].args = vec!["--listen=:9102".into()];
        let d = testing::diagnosis(&f);
        assert_eq!(d.root_cause.as_str(), ROOT_CAUSE);
        assert_eq!(
            d.summary,
            "api exits at start (exit 2): its flag parser rejects -metrics.listen-address in the image's entrypoint with args [--metrics.listen-address=:9102]; the last rollout (30 h ago) changed them from the image's entrypoint with args [--listen=:9102]"
        );
        for (line, flag) in [
            (
                "usage: worker.py [-h]\nworker.py: error: unrecognized arguments: --batch=5",
                "--batch=5",
            ),
            ("Error: unknown flag: --workers", "--workers"),
            ("error: unknown option '--port'", "--port"),
            (
                "Unrecognized option: --XX:MaxRamPercentage=75",
                "--XX:MaxRamPercentage=75",
            ),
        ] {
            assert_eq!(rejected_flag(line).as_deref(), Some(flag), "{line}");
        }
        assert_eq!(
            rejected_flag("fatal: required environment variable X is not set"),
            None
        );
    }

    #[test]
    fn a_command_the_image_does_not_hold_after_a_deploy() {
        let d = testing::diagnosis(&not_found("/usr/local/bin/cart"));
        assert_eq!(d.root_cause.as_str(), ROOT_CAUSE);
        assert_eq!(
            d.summary,
            "api never starts: the image has no executable /usr/local/bin/cart to run [/usr/local/bin/cart]; the last rollout (30 h ago) changed it from [/app/cart]"
        );
        assert_eq!(d.confidence, 0.95);
    }

    #[test]
    fn a_restored_command_that_still_does_not_start_in_the_replay_names_the_apps_owners() {
        let d = testing::diagnosis(&not_found("/usr/local/bin/cart"));
        let outcome = |not_ready: &[&str], ready: u32| squad_protocols::Outcome {
            desired: 2,
            ready,
            not_ready: not_ready.iter().map(|p| (*p).to_owned()).collect(),
            restarts: 40,
            oom_kills: 0,
            peak: None,
            limit: None,
        };
        let replay = |with: squad_protocols::Outcome| squad_protocols::Replay {
            horizon_hours: 24,
            without: outcome(&["cart-6f9c8d7b54-x2k9p: api waiting: CrashLoopBackOff"], 0),
            with,
            seeded_from: String::new(),
        };
        let why = BadStart
            .replay_failed(
                &d,
                &replay(outcome(
                    &["cart-7d4b9c6f58-q2w3e: api waiting: CrashLoopBackOff"],
                    0,
                )),
            )
            .unwrap();
        assert!(
            why.starts_with("the owner is the app's owners")
                && why.contains("(cart-7d4b9c6f58-q2w3e: api waiting: CrashLoopBackOff)")
                && why.contains("the command it restores is not one the image the pods run holds"),
            "{why}"
        );
        // Pods the nodes cannot hold, or another container waiting: not the command's doing.
        for not_ready in [
            "cart-7d4b9c6f58-q2w3e: Pending",
            "cart-7d4b9c6f58-q2w3e: proxy waiting: CrashLoopBackOff",
        ] {
            assert_eq!(
                BadStart.replay_failed(&d, &replay(outcome(&[not_ready], 1))),
                None,
                "{not_ready}"
            );
        }
    }

    #[test]
    fn an_app_that_exits_1_is_not_a_bad_start() {
        let f = testing::crashing(&["KeyError: 'X'"]);
        assert!(BadStart.detect(&f, &Readings::of(&f)).is_none());
        let f = testing::oom_under_load();
        assert!(BadStart.detect(&f, &Readings::of(&f)).is_none());
    }
}
