//! One-line messages the diagnosis reads: an app's log line with the apiserver's RBAC refusal,
//! the scheduler's `FailedScheduling` message, and the apiserver's quota or LimitRange refusal.

use squad_diagnosis::families::{quota_or_limit_range, rbac_denied, scheduling};
use squad_protocols::cluster::RbacRefusal;

/// Whether `s` could be a Kubernetes name, verb, resource or API group (what the apiserver's
/// message quotes): letters, digits, `-`, `.`, `_` and `*`, nothing that delimits the message.
fn is_token(s: &str) -> bool {
    s.chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '*'))
}

/// `families::rbac_denied::parse` (= `RbacRefusal::parse`), `families::scheduling::parse_message`
/// and `families::quota_or_limit_range::parse`, each on the whole input. A refusal's message is
/// part of the line; when its fields are what Kubernetes allows in them (no quote or space), the
/// message the apiserver writes for it reads back to the same refusal.
pub fn diagnosis_messages(data: &[u8]) {
    let Some(line) = super::text(data) else {
        return;
    };
    if let Some(refusal) = rbac_denied::parse(line) {
        assert!(
            line.contains(&refusal.message),
            "message {:?} not in the line",
            refusal.message
        );
        let r = &refusal.request;
        let fields = [
            &refusal.namespace,
            &refusal.service_account,
            &r.verb,
            &r.resource,
        ];
        let tokens = fields.iter().all(|f| !f.is_empty() && is_token(f))
            && is_token(&r.group)
            && r.name
                .as_deref()
                .is_none_or(|n| !n.is_empty() && is_token(n));
        if tokens {
            let written = r.forbidden(&refusal.namespace, &refusal.service_account);
            let again = RbacRefusal::parse(&written);
            assert_eq!(
                again
                    .as_ref()
                    .map(|a| (&a.namespace, &a.service_account, &a.request)),
                Some((&refusal.namespace, &refusal.service_account, r)),
                "the refusal written back as {written:?}"
            );
        }
    }
    let _ = scheduling::parse_message(line);
    let _ = quota_or_limit_range::parse(line);
}
