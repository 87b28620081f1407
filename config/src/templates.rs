//! Templates for what Scribe writes. `{{key}}` placeholders are filled by [`render`].

pub const RUNBOOK: &str = include_str!("../templates/runbook.md");
pub const DECISION: &str = include_str!("../templates/decision.md");
pub const INCIDENT_REPORT: &str = include_str!("../templates/incident-report.md");

/// Replaces each `{{key}}` with its value. A placeholder with no value is left visible, so a
/// missing field shows in review instead of vanishing.
pub fn render(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = template.to_owned();
    for (k, v) in values {
        out = out.replace(&format!("{{{{{k}}}}}"), v);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_fills_known_and_keeps_unknown_placeholders() {
        assert_eq!(render("a {{x}} {{y}}", &[("x", "1")]), "a 1 {{y}}");
    }
}
