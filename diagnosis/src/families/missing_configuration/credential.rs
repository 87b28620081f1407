//! What an earlier `env:` item would restore, and where a credential lives instead. An item
//! whose literal `value:` the redaction gateway's detectors call a credential (a password in a
//! connection URL, a token's shape, the value of a variable named `*_PASSWORD`, `*_TOKEN`,
//! `*_SECRET`, `API_KEY`…) is not put back: a secret value never goes into the repository. The
//! variable is pointed at the Secret key that names it instead — the one key of the namespace's
//! Secrets that is the variable's name written another way (`database-url` for `DATABASE_URL`).
//! Key names only: no value is read, and none is put in any text squad writes.

use squad_gitops::objects;
use squad_runtime::Redactor;

use crate::names::normalised;

/// Whether an `env:` item (its lines, the first `- name: X`) sets a literal `value:` that the
/// redaction gateway's detectors call a credential. A reference (`valueFrom`) holds no value and
/// never is one; an item squad cannot read as YAML is judged by its text.
pub(super) fn clear_text_credential(item: &[String]) -> bool {
    if !sets_literal(item) {
        return false;
    }
    let text = item.join("\n");
    // Built-in detectors that do not compile cannot vouch for the value: it is not restored.
    Redactor::new(&[]).map_or(true, |r| r.redact(&text) != text)
}

/// Whether the item sets `value:` (or cannot be read: then it may).
fn sets_literal(item: &[String]) -> bool {
    // The list item as a mapping: `- name: X` / `  value: y` → `name: X` / `value: y`.
    let mapping = item
        .iter()
        .map(|l| {
            l.strip_prefix("- ")
                .or_else(|| l.strip_prefix("  "))
                .unwrap_or(l)
        })
        .collect::<Vec<_>>()
        .join("\n");
    match objects::parse("env item", &mapping) {
        Ok(docs) => docs
            .first()
            .is_some_and(|d| d.get("value").is_some_and(|v| !v.is_null())),
        Err(_) => true,
    }
}

/// The keys of the namespace's Secrets named like `var` (the same once case and the `-`, `_`,
/// `.` separators are set aside), as (Secret, key).
pub(super) fn keys_named_like<'c>(
    var: &str,
    secrets: &'c [(String, Vec<String>)],
) -> Vec<(&'c str, &'c str)> {
    let wanted = normalised(var);
    secrets
        .iter()
        .flat_map(|(secret, keys)| keys.iter().map(move |k| (secret.as_str(), k.as_str())))
        .filter(|(_, k)| normalised(k) == wanted)
        .collect()
}

/// The `env:` item that reads `var` from key `key` of Secret `secret`.
pub(super) fn secret_ref_item(var: &str, secret: &str, key: &str) -> Vec<String> {
    vec![
        format!("- name: {var}"),
        "  valueFrom:".into(),
        "    secretKeyRef:".into(),
        format!("      name: {secret}"),
        format!("      key: {key}"),
    ]
}

/// (Secret, key) pairs as the pull request and escalations list them: `` `s/k`, `t/k` ``.
pub(super) fn listed(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(s, k)| format!("`{s}/{k}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_owned).collect()
    }

    #[test]
    fn a_connection_url_with_a_password_is_a_credential_in_clear_text() {
        let item = lines(
            "- name: DATABASE_URL\n  value: postgres://orders:Xk29fhQ7pLm@db.shop.svc:5432/orders",
        );
        assert!(clear_text_credential(&item));
        // Quoted, or in a variable named otherwise: the value decides.
        let quoted =
            lines("- name: PRIMARY_DSN\n  value: \"mysql://app:hunter2hunter2@db:3306/app\"");
        assert!(clear_text_credential(&quoted));
    }

    #[test]
    fn a_secret_named_variable_with_a_literal_value_is_a_credential() {
        for (name, value) in [
            ("DB_PASSWORD", "correct-horse-battery"),
            ("GITHUB_TOKEN", "ghp_Yq8x2Lm0Pz7Rt4Vb6Nc1Ks3Jd5Hf9Gw2Ea0"),
            ("STRIPE_SECRET", "whsec_1a2b3c4d"),
            ("API_KEY", "9f8e7d6c5b4a"),
        ] {
            let item = lines(&format!("- name: {name}\n  value: {value}"));
            assert!(clear_text_credential(&item), "{name}");
        }
    }

    #[test]
    fn references_and_ordinary_values_are_not_credentials() {
        for item in [
            // A reference holds no value.
            "- name: DATABASE_URL\n  valueFrom:\n    secretKeyRef:\n      name: orders-db\n      key: url",
            "- name: DB_PASSWORD\n  valueFrom:\n    secretKeyRef:\n      name: db\n      key: password",
            // A URL without a password, a queue name, a port, a region under `_KEY`.
            "- name: DATABASE_URL\n  value: postgres://db.shop.svc:5432/orders",
            "- name: ORDERS_QUEUE\n  value: orders.v1",
            "- name: PORT\n  value: \"8080\"",
            "- name: PARTITION_KEY\n  value: region",
            // Another variable's reference, masks.
            "- name: DB_PASSWORD\n  value: $(POSTGRES_PASSWORD)",
            "- name: API_TOKEN\n  value: \"\"",
        ] {
            assert!(!clear_text_credential(&lines(item)), "{item}");
        }
    }

    #[test]
    fn secret_keys_match_the_variable_under_case_and_separators() {
        let secrets = vec![
            (
                "orders-postgres".to_owned(),
                vec!["database-url".to_owned(), "database-user".to_owned()],
            ),
            ("carrier-api".to_owned(), vec!["token".to_owned()]),
        ];
        assert_eq!(
            keys_named_like("DATABASE_URL", &secrets),
            vec![("orders-postgres", "database-url")]
        );
        assert!(keys_named_like("DATABASE_PASSWORD", &secrets).is_empty());
        let twice = vec![
            ("a".to_owned(), vec!["database_url".to_owned()]),
            ("b".to_owned(), vec!["DATABASE_URL".to_owned()]),
        ];
        assert_eq!(keys_named_like("DATABASE_URL", &twice).len(), 2);
        assert_eq!(
            listed(&keys_named_like("DATABASE_URL", &twice)),
            "`a/database_url`, `b/DATABASE_URL`"
        );
    }
}
