//! The configuration an application's code reads: each environment variable it reads, where, and
//! whether it can start without it, set against what the workload's manifest gives it.

use regex::Regex;
use squad_protocols::cluster::EnvVar;

use super::language_of;

/// One read of an environment variable in the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigRead {
    pub var: String,
    pub file: String,
    pub line: usize,
    /// Whether the code refuses to run without it (`os.environ["X"]`, a `must…`/`require…`
    /// helper), as far as the line shows.
    pub required: bool,
}

/// Patterns that read an environment variable, by language: (regex with the name as group 1,
/// whether the read itself requires the variable).
fn patterns(lang: &str) -> &'static [(&'static str, bool)] {
    match lang {
        "python" => &[
            (r#"os\.environ\[\s*["']([A-Z][A-Z0-9_]*)["']\s*\]"#, true),
            (
                r#"os\.(?:environ\.get|getenv)\(\s*["']([A-Z][A-Z0-9_]*)["']"#,
                false,
            ),
        ],
        "go" => &[(r#"\b(\w*[Ee]nv\w*)\(\s*"([A-Z][A-Z0-9_]*)""#, false)],
        "jvm" => &[(r#"System\.getenv\(\s*"([A-Z][A-Z0-9_]*)""#, false)],
        "node" => &[
            (r"process\.env\.([A-Z][A-Z0-9_]*)", false),
            (r#"process\.env\[\s*["']([A-Z][A-Z0-9_]*)["']"#, false),
        ],
        "rust" => &[(r#"env::var(?:_os)?\(\s*"([A-Z][A-Z0-9_]*)""#, false)],
        _ => &[],
    }
}

/// Every environment variable the source reads, in file and line order.
pub fn config_reads(files: &[(String, String)]) -> Vec<ConfigRead> {
    let mut out = Vec::new();
    for (path, text) in files {
        for (pattern, required) in patterns(language_of(path)) {
            let Ok(re) = Regex::new(pattern) else {
                continue;
            };
            for (i, line) in text.lines().enumerate() {
                for c in re.captures_iter(line) {
                    // A helper's name (Go's `mustEnv("X")`) says whether it insists.
                    let (helper, var) = match (c.get(1), c.get(2)) {
                        (Some(h), Some(v)) => (h.as_str(), v.as_str()),
                        (Some(v), None) => ("", v.as_str()),
                        _ => continue,
                    };
                    let insists = helper.to_ascii_lowercase();
                    out.push(ConfigRead {
                        var: var.to_owned(),
                        file: path.clone(),
                        line: i + 1,
                        required: *required
                            || insists.starts_with("must")
                            || insists.starts_with("require"),
                    });
                }
            }
        }
    }
    out.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
    out
}

/// `secret:<name>/<key>` as a reader sees it: `key dsn of Secret ledger-db`.
fn source_words(source: &str) -> String {
    match source.split_once(':') {
        Some((kind @ ("secret" | "configmap"), object)) => {
            let kind = if kind == "secret" {
                "Secret"
            } else {
                "ConfigMap"
            };
            match object.split_once('/') {
                Some((name, key)) => format!("key `{key}` of {kind} `{name}`"),
                None => format!("{kind} `{object}`"),
            }
        }
        _ if source == "value" => "a literal value".to_owned(),
        _ => format!("`{source}`"),
    }
}

/// The section of Data's comment on configuration: each variable the code reads, where, and what
/// the manifest sets it from; `broken` is the reference the diagnosis found broken
/// (`secret:<name>/<key>` prefix), if any. Returns the section and the variables the code
/// requires that the manifest does not set.
pub fn section(
    reads: &[ConfigRead],
    env: &[EnvVar],
    broken: Option<&str>,
) -> (String, Vec<String>) {
    let mut text = String::new();
    let mut unset = Vec::new();
    if reads.is_empty() {
        text.push_str("The application's source reads no environment variable by name.\n");
        return (text, unset);
    }
    text.push_str("Configuration the code reads, against the manifest:\n");
    let mut seen: Vec<&str> = Vec::new();
    for r in reads {
        if seen.contains(&r.var.as_str()) {
            continue;
        }
        seen.push(&r.var);
        let need = if reads.iter().any(|x| x.var == r.var && x.required) {
            "required"
        } else {
            "read"
        };
        let set = match env.iter().find(|e| e.name == r.var) {
            Some(e) => {
                let at_fault = broken.is_some_and(|b| e.source.starts_with(b));
                format!(
                    "set from {}{}",
                    source_words(&e.source),
                    if at_fault {
                        " — **the reference the kubelet cannot resolve**"
                    } else {
                        ""
                    }
                )
            }
            None => {
                if need == "required" {
                    unset.push(r.var.clone());
                }
                "**not set in the manifest**".to_owned()
            }
        };
        text.push_str(&format!(
            "- `{}` — {need} at `{}:{}`; {set}\n",
            r.var, r.file, r.line
        ));
    }
    (text, unset)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn files(path: &str, text: &str) -> Vec<(String, String)> {
        vec![(path.to_owned(), text.to_owned())]
    }

    #[test]
    fn reads_are_found_in_each_language_with_whether_they_insist() {
        let py = config_reads(&files(
            "svc/settings.py",
            "import os\nURL = os.environ[\"DATABASE_URL\"]\nLEVEL = os.environ.get('LOG_LEVEL', 'info')\n",
        ));
        assert_eq!(
            py.iter()
                .map(|r| (r.var.as_str(), r.line, r.required))
                .collect::<Vec<_>>(),
            [("DATABASE_URL", 2, true), ("LOG_LEVEL", 3, false)]
        );
        let go = config_reads(&files(
            "main.go",
            "func mustEnv(name string) string {\n\tv, ok := os.LookupEnv(name)\n}\n\tdb := mustEnv(\"DB_DSN\")\n\tport := os.Getenv(\"PORT\")\n",
        ));
        assert_eq!(
            go.iter()
                .map(|r| (r.var.as_str(), r.required))
                .collect::<Vec<_>>(),
            [("DB_DSN", true), ("PORT", false)]
        );
        let node = config_reads(&files("index.js", "const k = process.env.API_KEY;\n"));
        assert_eq!(node[0].var, "API_KEY");
        let java = config_reads(&files(
            "App.java",
            "String u = System.getenv(\"QUEUE_URL\");\n",
        ));
        assert_eq!(java[0].var, "QUEUE_URL");
    }

    #[test]
    fn the_section_sets_reads_against_the_manifest() {
        let reads = config_reads(&files(
            "app/settings.py",
            "a = os.environ[\"DATABASE_URL\"]\nb = os.environ[\"QUEUE\"]\nc = os.getenv(\"DEBUG\")\n",
        ));
        let env = vec![EnvVar {
            name: "DATABASE_URL".into(),
            source: "secret:ledger-db/dsn".into(),
            literal: None,
        }];
        let (text, unset) = section(&reads, &env, Some("secret:ledger-db/dsn"));
        assert!(
            text.contains("- `DATABASE_URL` — required at `app/settings.py:1`; set from key `dsn` of Secret `ledger-db` — **the reference the kubelet cannot resolve**"),
            "{text}"
        );
        assert!(
            text.contains(
                "- `QUEUE` — required at `app/settings.py:2`; **not set in the manifest**"
            ),
            "{text}"
        );
        assert_eq!(unset, ["QUEUE"], "DEBUG is optional");
    }
}
