//! Data — code and application: reads the handler and the app's source for unbounded
//! allocation, checks runtime memory flags against the container limit, comments on what it found
//! and files an issue with concrete profiling steps for the app's language.

use async_trait::async_trait;
use regex::Regex;
use squad_config::charters;
use squad_diagnosis::families::broken_config_reference::{self, BrokenReference};
use squad_diagnosis::{CodeFocus, FollowupContext, families};
use squad_protocols::{Action, Assignment, Finding, IssueSpec, Member, Report, Severity};

use squad_protocols::llm::Rejection;
use squad_runtime::CrewError;

use crate::mind::{self, Ask, Tool};
use crate::specialist::Skill;
use crate::{CrewContext, effects};

mod config;
pub use config::{ConfigRead, config_reads};

/// What Data's model concludes from the code.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeReview {
    /// Whether the code explains the incident, and how (two or three sentences).
    pub assessment: String,
    /// Places in the source that can grow without bound, most likely first (at most 8).
    pub suspects: Vec<Suspect>,
}

/// A line of the application's source.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Suspect {
    /// A path as `app_list_files` lists it.
    pub file: String,
    /// The line number, from 1.
    pub line: u32,
    pub why: String,
}

/// The tools Data's model may use.
pub const TOOLS: &[Tool] = &[
    Tool::AppListFiles,
    Tool::AppReadFile,
    Tool::AppSearchCode,
    Tool::Workload,
    Tool::Pods,
    Tool::PodLogs,
    Tool::MemoryHistory,
    Tool::RequestRates,
];

/// Suspects must be real lines of the source: no invented files or line numbers.
pub fn check_review(r: &CodeReview, files: &[(String, String)]) -> Result<(), Rejection> {
    mind::clean_text(&r.assessment, 1_500, "assessment")?;
    if r.suspects.len() > 8 {
        return Err(Rejection::from("more than 8 suspects"));
    }
    for (i, s) in r.suspects.iter().enumerate() {
        let Some((_, text)) = files.iter().find(|(p, _)| *p == s.file) else {
            return Err(Rejection::from(format!(
                "suspects[{i}].file {:?} is not a source file of the app",
                s.file
            )));
        };
        let lines = text.lines().count();
        if s.line == 0 || s.line as usize > lines {
            return Err(Rejection::from(format!(
                "suspects[{i}].line {} is outside {} (1-{lines})",
                s.line, s.file
            )));
        }
        mind::clean_text(&s.why, 300, &format!("suspects[{i}].why"))?;
    }
    Ok(())
}

pub fn charter() -> &'static str {
    charters::charter(Member::Data)
}

pub struct Data;

/// A place in the code that can grow without bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hotspot {
    pub file: String,
    pub line: usize,
    pub code: String,
    pub why: &'static str,
}

pub fn language_of(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "py" => "python",
        "go" => "go",
        "java" | "kt" => "jvm",
        "js" | "ts" | "mjs" => "node",
        "rs" => "rust",
        _ => "unknown",
    }
}

/// Patterns of unbounded growth, by language.
fn patterns(lang: &str) -> Vec<(&'static str, &'static str)> {
    match lang {
        "python" => vec![
            (
                r"lru_cache\(\s*maxsize\s*=\s*None",
                "lru_cache without a size bound",
            ),
            (
                r"^\s*@(functools\.)?cache\b",
                "functools.cache never evicts",
            ),
            (
                r"^[A-Z_][A-Z0-9_]*\s*(:\s*\w+(\[.*\])?)?\s*=\s*(\{\}|\[\]|dict\(\)|list\(\)|defaultdict\()",
                "module-level container (grows for the process's lifetime if written per request)",
            ),
            (
                r"^\s*[A-Z_][A-Z0-9_]*(\[[^\]]+\]\s*=|\.append\(|\.setdefault\()",
                "write into a module-level container",
            ),
            (
                r"request\.(get_data|data)\b|\.read\(\)\s*$",
                "whole request body read into memory",
            ),
        ],
        "go" => vec![
            (
                r"^var\s+\w+\s*=\s*(make\(map|map\[)",
                "package-level map (no eviction)",
            ),
            (r"(io|ioutil)\.ReadAll\(", "whole body read into memory"),
            (
                r"append\(\s*[A-Z]\w*\s*,",
                "append to a package-level slice",
            ),
        ],
        "jvm" => vec![
            (r"static\s+(final\s+)?(Map|List|Set)<", "static collection"),
            (r"readAllBytes\(", "whole stream read into memory"),
        ],
        "node" => vec![
            (
                r"^(const|let|var)\s+\w+\s*=\s*(\[\]|\{\}|new Map\(\))",
                "module-level container",
            ),
            (r"\.push\(", "push into a collection"),
        ],
        _ => Vec::new(),
    }
}

pub fn scan(files: &[(String, String)]) -> Vec<Hotspot> {
    let mut out = Vec::new();
    for (path, text) in files {
        for (p, why) in patterns(language_of(path)) {
            let Ok(re) = Regex::new(p) else { continue };
            for (i, line) in text.lines().enumerate() {
                if re.is_match(line) {
                    out.push(Hotspot {
                        file: path.clone(),
                        line: i + 1,
                        code: line.trim().to_owned(),
                        why,
                    });
                }
            }
        }
        if language_of(path) == "go" {
            out.extend(go_package_map_writes(path, text));
        }
    }
    out
}

/// Go: writes into a map held by a package-level variable (`seen[k] = v`, or a map field of a
/// package-level struct: `cache.entries[k] = v`) in a file that never `delete`s from it — the
/// map lives as long as the process and grows with every distinct key.
fn go_package_map_writes(path: &str, text: &str) -> Vec<Hotspot> {
    let Ok(single) = Regex::new(r"^var\s+(\w+)\b") else {
        return Vec::new();
    };
    let Ok(grouped) = Regex::new(r"^\s+(\w+)\b") else {
        return Vec::new();
    };
    let mut names = Vec::new();
    let mut in_block = false;
    for line in text.lines() {
        if line.starts_with("var (") {
            in_block = true;
        } else if in_block && line.starts_with(')') {
            in_block = false;
        } else if in_block {
            names.extend(grouped.captures(line).map(|c| c[1].to_owned()));
        } else if let Some(c) = single.captures(line) {
            names.push(c[1].to_owned());
        }
    }
    let mut out = Vec::new();
    for name in names {
        let Ok(write) = Regex::new(&format!(r"\b{name}(\.\w+)*\[[^\]]+\]\s*[-+*/|&]?=[^=]")) else {
            continue;
        };
        let Ok(delete) = Regex::new(&format!(r"\bdelete\(\s*{name}\b")) else {
            continue;
        };
        if delete.is_match(text) {
            continue;
        }
        for (i, line) in text.lines().enumerate() {
            if write.is_match(line) {
                out.push(Hotspot {
                    file: path.to_owned(),
                    line: i + 1,
                    code: line.trim().to_owned(),
                    why: "write into a package-level map nothing deletes from (grows with every key)",
                });
            }
        }
    }
    out
}

pub fn profiling_steps(
    lang: &str,
    pod: &str,
    namespace: &str,
    container: &str,
    route: &str,
) -> String {
    let exec = format!("kubectl exec -n {namespace} {pod} -c {container} --");
    match lang {
        "python" => format!(
            "1. Reproduce the load on a staging replica: replay `{route}` at the incident's rate (e.g. `k6 run --vus 50 --duration 15m checkout.js`).\n\
             2. Take heap snapshots while it runs: start the worker with `PYTHONTRACEMALLOC=25` and call `tracemalloc.take_snapshot()` every 5 minutes (a debug endpoint), then `snapshot2.compare_to(snapshot1, 'lineno')[:20]` — growing lines point at the allocation.\n\
             3. For native and allocator detail: `memray run --live -o /tmp/checkout.bin gunicorn app:app`, then `memray flamegraph /tmp/checkout.bin`.\n\
             4. Live, without a restart: `{exec} py-spy dump --pid 1 --locals` during a spike.\n\
             5. Check per-worker memory: `{exec} ps -o pid,rss,cmd -C gunicorn`; total ≈ workers × per-worker RSS — size `GUNICORN_WORKERS` against the limit.\n\
             6. Success criterion: RSS per worker flat (±5%) over 30 minutes at constant load."
        ),
        "go" => format!(
            "1. Expose pprof (`import _ \"net/http/pprof\"`) on an internal port.\n\
             2. Under load on `{route}`: `{exec} wget -qO- localhost:6060/debug/pprof/heap > heap1.pb.gz`, again 10 minutes later; `go tool pprof -base heap1.pb.gz heap2.pb.gz` shows what grew.\n\
             3. Set `GOMEMLIMIT` to ~90% of the container limit so the GC works before the kernel kills.\n\
             4. Success criterion: `inuse_space` flat over 30 minutes at constant load."
        ),
        "jvm" => format!(
            "1. Check heap flags: `-XX:MaxRAMPercentage=75` (or `-Xmx` below the limit minus metaspace and threads).\n\
             2. Under load on `{route}`: `{exec} jcmd 1 GC.heap_dump /tmp/heap.hprof`, and a JFR recording `jcmd 1 JFR.start duration=10m filename=/tmp/rec.jfr`.\n\
             3. Open the dump in Eclipse MAT: dominator tree and leak suspects.\n\
             4. Success criterion: old-gen after full GC flat over 30 minutes."
        ),
        "node" => format!(
            "1. Start with `--heapsnapshot-signal=SIGUSR2` and `--max-old-space-size` below the limit.\n\
             2. Under load on `{route}`: `{exec} kill -USR2 1` twice, 10 minutes apart; compare the snapshots in Chrome DevTools (Comparison view).\n\
             3. Success criterion: retained size flat over 30 minutes."
        ),
        _ => format!(
            "1. Under load on `{route}`, sample the process's RSS (`{exec} cat /proc/1/status`) every minute and take the runtime's heap profile at the start and after 15 minutes."
        ),
    }
}

#[async_trait]
impl Skill for Data {
    fn member(&self) -> Member {
        Member::Data
    }

    async fn perform(&self, ctx: &CrewContext, a: &Assignment) -> Result<Report, CrewError> {
        let repo = &ctx.app_repo;
        let base = repo.default_branch().await?;
        let mut files = Vec::new();
        let sources: Vec<String> = repo
            .list_files("", &base)
            .await?
            .into_iter()
            .filter(|p| language_of(p) != "unknown")
            .collect();
        let mut walk = crate::walk::Walk::new("source files", sources.len());
        for path in sources {
            if !walk.more() {
                break;
            }
            let text = repo.read_file(&path, &base).await?;
            walk.read(text.as_ref().map_or(0, String::len));
            if let Some(text) = text {
                files.push((path, text));
            }
        }
        let lang = files
            .iter()
            .map(|(p, _)| language_of(p))
            .find(|l| *l != "unknown")
            .unwrap_or("unknown");
        let hotspots = scan(&files);
        let d = &a.diagnosis;
        let w = ctx.cluster.workload(&a.workload).await?;
        let container = d
            .signals
            .memory
            .as_ref()
            .map(|m| m.container.clone())
            .or_else(|| d.signals.crash.as_ref().map(|c| c.container.clone()))
            .or_else(|| w.containers.first().map(|c| c.name.clone()))
            .unwrap_or_default();
        let spec = w.container(&container);
        let mut flags = Vec::new();
        if let Some(c) = spec {
            for e in &c.env {
                match e.name.as_str() {
                    "GUNICORN_WORKERS" | "WEB_CONCURRENCY" => flags.push(format!("`{}` is set: memory scales with the worker count — each worker holds its own heap", e.name)),
                    "GOMEMLIMIT" | "JAVA_OPTS" | "JAVA_TOOL_OPTIONS" | "NODE_OPTIONS" => flags.push(format!("`{}` is set ({}); check it against the container limit", e.name, e.source)),
                    _ => {}
                }
            }
            if lang == "go" && !c.env.iter().any(|e| e.name == "GOMEMLIMIT") {
                flags.push(
                    "`GOMEMLIMIT` is not set: the Go GC does not know the container limit".into(),
                );
            }
        }
        let pods = ctx.cluster.pods_of(&a.workload).await.unwrap_or_default();
        let pod = pods
            .first()
            .map(|p| p.name.clone())
            .unwrap_or_else(|| format!("deploy/{}", a.workload.name));
        let route = d
            .signals
            .traffic
            .as_ref()
            .map(|t| t.route.clone())
            .unwrap_or_else(|| "/".into());
        let handler = files
            .iter()
            .find(|(p, t)| t.contains(&route) || p.contains("handler"))
            .map(|(p, _)| p.clone());
        let family = families::of(&d.root_cause);
        let leak = family.code_is_prime_suspect();
        let focus = family.code_focus();
        // For a configuration failure, what the code reads matters, not what it allocates.
        let reads = config_reads(&files);
        let broken = (d.root_cause.as_str() == broken_config_reference::ROOT_CAUSE)
            .then(|| squad_diagnosis::family_signals::<BrokenReference>(d))
            .flatten()
            .and_then(|b| {
                b.name.map(|n| {
                    format!(
                        "{}:{n}/{}",
                        b.kind.to_ascii_lowercase(),
                        b.key.unwrap_or_default()
                    )
                })
            });
        let (config_text, unset) = config::section(
            &reads,
            spec.map(|c| c.env.as_slice()).unwrap_or_default(),
            broken.as_deref(),
        );
        let hotspots = if focus == CodeFocus::Configuration {
            Vec::new()
        } else {
            hotspots
        };
        let mut findings = Vec::new();
        let mut comment = format!("**Data** (code and application, {lang}):\n\n");
        if let Some(note) = walk.note() {
            comment.push_str(&format!("The application's repository was {note}.\n\n"));
        }
        match &handler {
            Some(h) => comment.push_str(&format!("Handler for `{route}`: `{h}`.\n\n")),
            None => comment.push_str(&format!(
                "No handler for `{route}` found in {}.\n\n",
                repo.repo()
            )),
        }
        if focus == CodeFocus::Configuration {
            comment.push_str(&config_text);
            for var in &unset {
                let r = reads.iter().find(|r| &r.var == var);
                findings.push(Finding {
                    severity: Severity::High,
                    title: format!(
                        "{var} is required by the code{} and not set in the manifest",
                        r.map(|r| format!(" ({}:{})", r.file, r.line))
                            .unwrap_or_default()
                    ),
                    detail: config_text.clone(),
                });
            }
        } else if hotspots.is_empty() {
            comment.push_str("**No unbounded allocation found** in the application source: caches are bounded and request data is released when the request ends.\n");
        } else {
            comment.push_str("Places that can grow without bound:\n");
            for h in &hotspots {
                comment.push_str(&format!(
                    "- `{}:{}` `{}` — {}\n",
                    h.file, h.line, h.code, h.why
                ));
                findings.push(Finding {
                    severity: if leak {
                        Severity::High
                    } else {
                        Severity::Medium
                    },
                    title: format!("{} at {}:{}", h.why, h.file, h.line),
                    detail: h.code.clone(),
                });
            }
        }
        if let Some(m) = d
            .signals
            .memory
            .as_ref()
            .filter(|_| focus == CodeFocus::Allocation)
        {
            comment.push_str(&format!(
                "\nMemory {} with traffic (unexplained growth {:.1} MiB/h): {}.\n",
                if m.leak_suspected {
                    "does not move"
                } else {
                    "moves"
                },
                m.trend_mib_per_hour,
                if m.leak_suspected {
                    "a leak — the code path above is the first suspect"
                } else {
                    "consistent with per-request allocation under a traffic surge, not a leak"
                }
            ));
        }
        for f in flags.iter().filter(|_| focus == CodeFocus::Allocation) {
            comment.push_str(&format!("- Runtime: {f}\n"));
        }
        let thought = mind::deliberate(
            ctx,
            Ask {
                member: Member::Data,
                assignment: a,
                task: match focus {
                    CodeFocus::Configuration => "Say which configuration the application's code reads and whether the manifest provides it, and list the lines that read the configuration at fault (real files and line numbers only).".into(),
                    CodeFocus::Allocation => "Say whether the application's code explains the incident, and list the lines that can grow without bound (real files and line numbers only).".into(),
                },
                context: comment.clone(),
                proposal: CodeReview {
                    assessment: match &d.signals.memory {
                        _ if focus == CodeFocus::Configuration => format!(
                            "The code reads {} environment variable(s){}; see the list above.",
                            reads.iter().map(|r| r.var.as_str()).collect::<std::collections::BTreeSet<_>>().len(),
                            if unset.is_empty() { String::new() } else { format!(", and requires {} that the manifest does not set", unset.join(", ")) }
                        ),
                        Some(m) if m.leak_suspected => format!("Memory grows {:.1} MiB/h independently of traffic: a leak; the lines below are the first suspects.", m.trend_mib_per_hour),
                        Some(_) => "Memory follows traffic: per-request allocation under a surge, not a leak.".into(),
                        None => format!("The code was read for the {} root cause; see the follow-up issue.", d.root_cause.as_str()),
                    },
                    suspects: if focus == CodeFocus::Configuration {
                        reads
                            .iter()
                            .filter(|r| r.required)
                            .take(8)
                            .map(|r| Suspect { file: r.file.clone(), line: r.line as u32, why: format!("requires {}", r.var) })
                            .collect()
                    } else {
                        hotspots
                            .iter()
                            .map(|h| Suspect { file: h.file.clone(), line: h.line as u32, why: h.why.to_string() })
                            .collect()
                    },
                },
                tools: TOOLS,
            },
            |r| check_review(r, &files),
        )
        .await;
        if let Some(model) = &thought.by_model {
            comment.push_str(&format!(
                "\n### Reading\n{}\n",
                thought.answer.assessment.trim()
            ));
            for s in thought.answer.suspects.iter().filter(|s| {
                !hotspots
                    .iter()
                    .any(|h| h.file == s.file && h.line == s.line as usize)
            }) {
                comment.push_str(&format!("- `{}:{}` — {}\n", s.file, s.line, s.why.trim()));
            }
            comment.push_str(&format!(
                "\n_Reading written with {model}; the patterns above come from the scan itself._\n"
            ));
        }
        let draft = family.followup(
            d,
            &FollowupContext {
                incident: a.incident.to_string(),
                issue: a.issue.number,
                workload: a.workload.clone(),
                container: container.clone(),
                pod: pod.clone(),
                language: lang.into(),
                route: route.clone(),
                profiling_steps: profiling_steps(
                    lang,
                    &pod,
                    &a.workload.namespace,
                    &container,
                    &route,
                ),
                code_findings: if focus == CodeFocus::Configuration {
                    config_text.clone()
                } else if hotspots.is_empty() {
                    "No unbounded allocation pattern in the source.".to_owned()
                } else {
                    hotspots
                        .iter()
                        .map(|h| format!("- `{}:{}` — {}", h.file, h.line, h.why))
                        .collect::<Vec<_>>()
                        .join("\n")
                },
            },
        );
        let title = draft.title;
        let spec = IssueSpec {
            title: title.clone(),
            body: format!(
                "{}\n\n_Filed by squad's Data (code and application)._",
                draft.body
            ),
            labels: vec!["incident-followup".into(), "squad:data".into(), draft.label],
        };
        let issue =
            effects::issue_once(ctx, &a.incident, Member::Data, "followup-issue", spec).await?;
        comment.push_str(&format!(
            "\nFollow-up with concrete steps: #{} — {title}.\n",
            issue.number
        ));
        effects::comment_once(
            ctx,
            &a.incident,
            Member::Data,
            "code-review",
            a.issue.number,
            &comment,
        )
        .await?;
        let distinct = reads
            .iter()
            .map(|r| r.var.as_str())
            .collect::<std::collections::BTreeSet<_>>()
            .len();
        let mut r = Report::new(
            Member::Data,
            if focus == CodeFocus::Configuration {
                format!(
                    "the {lang} code reads {distinct} environment variable(s){}; follow-up issue #{}",
                    if unset.is_empty() {
                        String::new()
                    } else {
                        format!("; required but not set: {}", unset.join(", "))
                    },
                    issue.number
                )
            } else if hotspots.is_empty() {
                format!(
                    "no unbounded allocation in the {lang} handler; follow-up issue #{}",
                    issue.number
                )
            } else {
                format!(
                    "{} possible unbounded allocation(s); follow-up issue #{}",
                    hotspots.len(),
                    issue.number
                )
            },
        );
        r.findings = findings;
        r.actions.push(Action::OpenedIssue { issue, title });
        r.actions.push(Action::Commented {
            issue: a.issue.number,
        });
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn bounded_python_cache_is_not_a_hotspot_but_unbounded_is() {
        let ok = vec![(
            "a.py".to_string(),
            "@lru_cache(maxsize=4096)\ndef f(x):\n    return x\n".to_string(),
        )];
        assert!(scan(&ok).is_empty());
        let bad = vec![(
            "a.py".to_string(),
            "SEEN = {}\n\ndef h(r):\n    SEEN[r.id] = r.body\n".to_string(),
        )];
        let found = scan(&bad);
        assert_eq!(found.len(), 2, "{found:?}");
    }

    #[test]
    fn a_go_map_written_per_request_and_never_deleted_from_is_a_hotspot() {
        let src = "package s\n\nvar seen = struct {\n\tsync.Mutex\n\tm map[string]int\n}{m: map[string]int{}}\n\nvar (\n\tcount int\n\tbyUser = make(map[string]int)\n)\n\nfunc H(k string) {\n\tseen.m[k] = 1\n\tbyUser[k] += 1\n\tlocal := map[string]int{}\n\tlocal[k] = 1\n\tif seen.m[k] == 1 {\n\t}\n}\n";
        let found = scan(&[("s.go".to_string(), src.to_string())]);
        let lines: Vec<usize> = found.iter().map(|h| h.line).collect();
        assert_eq!(lines, [14, 15], "{found:?}");
        // Pruned: not a hotspot.
        let pruned =
            format!("{src}\nfunc P(k string) {{ delete(seen.m, k); delete(byUser, k) }}\n");
        assert!(scan(&[("s.go".to_string(), pruned)]).is_empty());
    }

    #[test]
    fn a_models_suspects_must_be_real_lines_of_real_files() {
        let files = vec![("app/cart.py".to_string(), "a\nb\nc\n".to_string())];
        let review = |file: &str, line: u32| CodeReview {
            assessment: "The cart handler keeps every request in a dict.".into(),
            suspects: vec![Suspect {
                file: file.into(),
                line,
                why: "grows with every request".into(),
            }],
        };
        assert!(check_review(&review("app/cart.py", 2), &files).is_ok());
        assert!(
            check_review(&review("app/cart.py", 9), &files)
                .unwrap_err()
                .0
                .contains("is outside app/cart.py")
        );
        assert!(
            check_review(&review("app/other.py", 1), &files)
                .unwrap_err()
                .0
                .contains("is not a source file")
        );
    }

    #[test]
    fn profiling_steps_fit_the_language() {
        assert!(profiling_steps("python", "p", "n", "c", "/x").contains("tracemalloc"));
        assert!(profiling_steps("go", "p", "n", "c", "/x").contains("pprof"));
        assert!(profiling_steps("jvm", "p", "n", "c", "/x").contains("jcmd"));
    }
}
