//! GitHub's REST path templates, for counting the requests the simulated API served.

/// The GitHub REST path template a request path belongs to (for counting requests).
pub fn template(path: &str) -> String {
    let path = path.split('?').next().unwrap_or_default();
    let segs: Vec<&str> = path.split('/').collect();
    if segs.len() < 4 || segs[1] != "repos" {
        return path.to_string();
    }
    let rest = &segs[4..];
    let tail = match rest {
        [] => String::new(),
        ["contents", ..] => "/contents/{path}".into(),
        ["labels", _] => "/labels/{name}".into(),
        ["git", "ref", ..] => "/git/ref/{ref}".into(),
        ["git", "refs", _, ..] => "/git/refs/{ref}".into(),
        ["git", kind @ ("commits" | "trees" | "blobs"), _] => format!("/git/{kind}/{{sha}}"),
        ["issues", "comments"] => "/issues/comments".into(),
        ["issues", _, more @ ..] => {
            let more: String = more.iter().map(|m| format!("/{m}")).collect();
            format!("/issues/{{issue_number}}{more}")
        }
        ["pulls", _, more @ ..] => {
            let more: String = more.iter().map(|m| format!("/{m}")).collect();
            format!("/pulls/{{pull_number}}{more}")
        }
        other => format!("/{}", other.join("/")),
    };
    format!("/repos/{{owner}}/{{repo}}{tail}")
}
