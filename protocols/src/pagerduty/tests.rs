//! Unit tests of PagerDuty webhook parsing: the event-type table, where Kubernetes labels are
//! found, the error for each bad field, and robustness against mangled bodies. (Signature checks
//! are the daemon's: their tests are in the `squad` crate's `signature` module.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use super::*;

const TRIGGERED: &str = include_str!("../../tests/fixtures/pagerduty/incident-triggered.json");
const ACKNOWLEDGED: &str =
    include_str!("../../tests/fixtures/pagerduty/incident-acknowledged.json");
const RESOLVED: &str = include_str!("../../tests/fixtures/pagerduty/incident-resolved.json");
const ALERTMANAGER: &str =
    include_str!("../../../tests/fixtures/alertmanager/webhook-v4-oomkilled-0.25.0.json");
/// PagerDuty's "send test event" payload.
const PING: &str = r#"{"event": {"id": "01FKZOXA868SHYEE4DVNWB5P9W",
        "event_type": "pagey.ping", "resource_type": "pagey",
        "occurred_at": "2026-11-23T19:00:00.000Z", "agent": null, "client": null,
        "data": {"message": "Hello from your friend Pagey!", "type": "ping"}}}"#;

fn parse(body: &str) -> PagerDutyEvent {
    parse_pagerduty_webhook(body.as_bytes()).unwrap()
}

fn err(body: &str) -> String {
    parse_pagerduty_webhook(body.as_bytes())
        .unwrap_err()
        .to_string()
}

/// The triggered fixture with `data` edited by `edit`.
fn triggered_with(edit: impl FnOnce(&mut Map<String, Value>)) -> String {
    let mut root: Value = serde_json::from_str(TRIGGERED).unwrap();
    let data = root["event"]["data"].as_object_mut().unwrap();
    edit(data);
    root.to_string()
}

// --- events -----------------------------------------------------------------------------

#[test]
fn triggered_incident_from_alertmanager_fires_with_its_kubernetes_labels() {
    let event = parse(TRIGGERED);
    assert_eq!(event.event_type, "incident.triggered");
    assert_eq!(
        event.event_id.as_deref(),
        Some("01JDBQ7Y3K8M2V6T9X4W5R0NZA")
    );
    let alert = event.alert.unwrap();
    assert_eq!(alert.source, AlertSource::Pagerduty);
    assert_eq!(alert.status, AlertStatus::Firing);
    assert_eq!(alert.name, "KubernetesPodOOMKilled");
    assert_eq!(alert.label("alertname"), Some("KubernetesPodOOMKilled"));
    assert_eq!(alert.namespace(), Some("production"));
    assert_eq!(alert.label("pod"), Some("payment-service-7d4b9c-xk2p"));
    assert_eq!(alert.label("container"), Some("payment-api"));
    assert_eq!(alert.label("deployment"), None);
    assert_eq!(alert.label("pagerduty_incident_id"), Some("Q1P9JH2CK7X4LM"));
    assert_eq!(
        alert.label("incident_key"),
        Some("e36c4f1b10d364492dbc5a1c4a24daecfed1a157538bba435a19d9b417d77e05")
    );
    assert_eq!(alert.label("service"), Some("payment-service (production)"));
    assert_eq!(alert.label("urgency"), Some("high"));
    assert_eq!(alert.label("priority"), Some("P1"));
    assert_eq!(
        alert.annotations.get("pagerduty_url").map(String::as_str),
        Some("https://acme.pagerduty.com/incidents/Q1P9JH2CK7X4LM")
    );
    assert!(alert.annotations["summary"].starts_with("[FIRING:1] KubernetesPodOOMKilled"));
    assert_eq!(
        alert.starts_at.unwrap().to_rfc3339(),
        "2026-11-23T19:21:51+00:00"
    );
    assert_eq!(alert.group_key, None);
    assert!(alert.validate().is_ok());
}

#[test]
fn resolved_incident_resolves_the_alert_it_triggered() {
    let fired = parse(TRIGGERED).alert.unwrap();
    let resolved = parse(RESOLVED).alert.unwrap();
    assert_eq!(resolved.status, AlertStatus::Resolved);
    assert_eq!(resolved.fingerprint, fired.fingerprint);
    assert_eq!(resolved.name, fired.name);
    assert_eq!(resolved.labels, fired.labels);
}

#[test]
fn fingerprint_follows_the_incident_id_only() {
    let fired = parse(TRIGGERED).alert.unwrap();
    let retitled = triggered_with(|d| {
        d.insert("title".into(), "something else entirely".into());
    });
    assert_eq!(
        parse(&retitled).alert.unwrap().fingerprint,
        fired.fingerprint
    );
    let other = triggered_with(|d| {
        d.insert("id".into(), "Q0THER1NC1DNT".into());
    });
    assert_ne!(parse(&other).alert.unwrap().fingerprint, fired.fingerprint);
}

#[test]
fn reopened_and_escalated_incidents_fire_again_on_the_same_fingerprint() {
    let fired = parse(TRIGGERED).alert.unwrap();
    for event_type in ["incident.reopened", "incident.escalated"] {
        let body = TRIGGERED.replace("incident.triggered", event_type);
        let event = parse(&body);
        assert_eq!(event.event_type, event_type);
        let alert = event.alert.unwrap();
        assert_eq!(alert.status, AlertStatus::Firing);
        assert_eq!(alert.fingerprint, fired.fingerprint);
    }
}

#[test]
fn acknowledged_incident_carries_no_alert() {
    let event = parse(ACKNOWLEDGED);
    assert_eq!(event.event_type, "incident.acknowledged");
    assert_eq!(
        event.event_id.as_deref(),
        Some("01JDBQC2F6H1N8P3S7D0G4J5KB")
    );
    assert_eq!(event.alert, None);
}

#[test]
fn other_incident_events_carry_no_alert_whatever_their_data() {
    for event_type in [
        "incident.priority_updated",
        "incident.unacknowledged",
        "incident.reassigned",
        "incident.delegated",
        "incident.custom_field_values.updated",
    ] {
        let event = parse(&TRIGGERED.replace("incident.triggered", event_type));
        assert_eq!(event.alert, None, "{event_type}");
    }
    // incident.annotated carries an incident_note, not an incident.
    let annotated = r#"{"event": {"id": "01E", "event_type": "incident.annotated",
            "resource_type": "incident", "occurred_at": "2026-11-23T19:30:00Z",
            "data": {"incident": {"id": "Q1P9JH2CK7X4LM", "type": "incident_reference"},
                     "id": "P2LA89X", "content": "Raised the memory limit", "trimmed": false,
                     "type": "incident_note"}}}"#;
    assert_eq!(parse(annotated).alert, None);
}

#[test]
fn pagerduty_test_ping_is_accepted_without_an_alert() {
    let event = parse(PING);
    assert_eq!(event.event_type, "pagey.ping");
    assert_eq!(event.alert, None);
}

#[test]
fn parsed_events_round_trip_through_serde() {
    for body in [TRIGGERED, ACKNOWLEDGED, RESOLVED, PING] {
        let event = parse(body);
        let json = serde_json::to_string(&event).unwrap();
        assert_eq!(
            serde_json::from_str::<PagerDutyEvent>(&json).unwrap(),
            event
        );
    }
}

#[test]
fn an_incident_naming_no_kubernetes_labels_is_named_by_its_title() {
    // PagerDuty's documented example incident.
    let body = triggered_with(|d| {
        d.insert("title".into(), "A little bump in the road".into());
        d.insert(
            "incident_key".into(),
            "d3640fbd41094207a1c11e58e46b1662".into(),
        );
    });
    let alert = parse(&body).alert.unwrap();
    assert_eq!(alert.name, "A little bump in the road");
    for key in PAGERDUTY_KUBERNETES_LABELS {
        assert_eq!(alert.label(key), None, "{key}");
    }
}

#[test]
fn alertmanager_status_prefix_is_dropped_from_a_title_used_as_name() {
    let body = triggered_with(|d| {
        d.insert("title".into(), "[FIRING:2] HighErrorRate checkout".into());
    });
    assert_eq!(parse(&body).alert.unwrap().name, "HighErrorRate checkout");
}

#[test]
fn kubernetes_labels_come_from_a_custom_details_object_first() {
    let body = triggered_with(|d| {
        d.insert(
            "custom_details".into(),
            serde_json::json!({"alertname": "KubeDeploymentReplicasMismatch",
                                   "namespace": "shop", "deployment": "cart", "num_firing": 1}),
        );
    });
    let alert = parse(&body).alert.unwrap();
    assert_eq!(alert.name, "KubeDeploymentReplicasMismatch");
    assert_eq!(alert.namespace(), Some("shop"));
    assert_eq!(alert.label("deployment"), Some("cart"));
    // What details do not name still comes from the title.
    assert_eq!(alert.label("pod"), Some("payment-service-7d4b9c-xk2p"));
}

#[test]
fn kubernetes_labels_come_from_alertmanagers_default_firing_detail_text() {
    let firing = "Labels:\n - alertname = KubernetesPodOOMKilled\n - container = payment-api\n \
                      - namespace = production\n - pod = payment-service-7d4b9c-xk2p\n\
                      Annotations:\n - summary = Container payment-api was OOMKilled\n";
    let body = triggered_with(|d| {
        d.insert(
            "title".into(),
            "[FIRING:1] KubernetesPodOOMKilled production".into(),
        );
        d.insert(
            "body".into(),
            serde_json::json!({"type": "incident_body",
                                   "details": {"firing": firing, "num_firing": "1"}}),
        );
    });
    let alert = parse(&body).alert.unwrap();
    assert_eq!(alert.name, "KubernetesPodOOMKilled");
    assert_eq!(alert.namespace(), Some("production"));
    assert_eq!(alert.label("pod"), Some("payment-service-7d4b9c-xk2p"));
    assert_eq!(alert.label("container"), Some("payment-api"));
}

#[test]
fn kubernetes_labels_come_from_details_given_as_text() {
    let body = triggered_with(|d| {
        d.insert("title".into(), "Pod restarting".into());
        d.insert(
            "details".into(),
            r#"{namespace="billing", pod='invoice-0', deployment = invoice}"#.into(),
        );
    });
    let alert = parse(&body).alert.unwrap();
    assert_eq!(alert.namespace(), Some("billing"));
    assert_eq!(alert.label("pod"), Some("invoice-0"));
    assert_eq!(alert.label("deployment"), Some("invoice"));
}

#[test]
fn label_pairs_must_stand_alone_and_be_sensible() {
    assert_eq!(
        find_pair("exported_namespace=kube-system namespace=prod", "namespace").as_deref(),
        Some("prod")
    );
    assert_eq!(find_pair("k8s.pod=a podname=b", "pod"), None);
    assert_eq!(find_pair("pod=", "pod"), None);
    assert_eq!(find_pair("pod=\"unterminated", "pod"), None);
    assert_eq!(find_pair("see pod=api-0.", "pod").as_deref(), Some("api-0"));
    assert_eq!(find_pair("pod=é", "pod"), None);
    assert_eq!(find_pair("épod=x", "pod"), None);
    assert_eq!(find_pair("—pod=x", "pod").as_deref(), Some("x"));
    assert_eq!(find_pair(&format!("pod={}", "a".repeat(300)), "pod"), None);
}

#[test]
fn non_incident_resource_type_is_rejected_by_name() {
    let body = r#"{"event": {"id": "01BRB6ZP4M6T8ZG4X6BP63ZB9O",
            "event_type": "service.updated", "resource_type": "service",
            "occurred_at": "2021-03-02T13:35:11.682Z",
            "agent": null, "client": null,
            "data": {"id": "PF9KMXH", "type": "service", "summary": "testing service updates"}}}"#;
    let e = err(body);
    assert!(
        e.contains("`event.resource_type`") && e.contains("\"incident\"") && e.contains("service"),
        "{e}"
    );
}

#[test]
fn each_error_names_its_field_and_what_was_expected() {
    let bodies: &[(&str, &str, &str)] = &[
        ("{\"event\": ", "not valid JSON", "EOF"),
        ("[1, 2]", "JSON object with an `event` object", "array"),
        (
            r#"{"messages": []}"#,
            "`event`",
            "V1/V2 webhooks are not supported",
        ),
        (r#"{"event": "incident.triggered"}"#, "`event`", "an object"),
        (
            r#"{"event": {"resource_type": "incident"}}"#,
            "`event.event_type`",
            "event type",
        ),
        (
            r#"{"event": {"event_type": 3}}"#,
            "`event.event_type`",
            "number 3",
        ),
        (
            r#"{"event": {"event_type": ""}}"#,
            "`event.event_type`",
            "event type",
        ),
        (
            r#"{"event": {"event_type": "incident.triggered", "id": 9}}"#,
            "`event.id`",
            "a string",
        ),
        (
            r#"{"event": {"event_type": "incident.triggered"}}"#,
            "`event.resource_type`",
            "\"incident\"",
        ),
        (
            r#"{"event": {"event_type": "incident.resolved", "resource_type": 5}}"#,
            "`event.resource_type`",
            "number 5",
        ),
        (
            r#"{"event": {"event_type": "incident.triggered", "resource_type": "incident"}}"#,
            "`event.data`",
            "the incident object",
        ),
        (
            concat!(
                r#"{"event": {"event_type": "incident.resolved", "#,
                r#""resource_type": "incident", "data": []}}"#
            ),
            "`event.data`",
            "an array",
        ),
    ];
    for (body, field, expected) in bodies {
        let e = err(body);
        assert!(e.contains(field), "{body}: {e} should name {field}");
        assert!(e.contains(expected), "{body}: {e} should say {expected}");
    }

    type Edit = fn(&mut Map<String, Value>);
    let edits: Vec<(Edit, &str, &str)> = vec![
        (
            |d| {
                d.remove("id");
            },
            "`event.data.id`",
            "the PagerDuty incident id",
        ),
        (
            |d| {
                d.insert("id".into(), 42.into());
            },
            "`event.data.id`",
            "number 42",
        ),
        (
            |d| {
                d.insert("type".into(), "incident_note".into());
            },
            "`event.data.type`",
            "\"incident\"",
        ),
        (
            |d| {
                d.insert("title".into(), serde_json::json!(["x"]));
            },
            "`event.data.title`",
            "an array",
        ),
        (
            |d| {
                d.remove("title");
            },
            "`event.data.title`",
            "used as the alert's name",
        ),
        (
            |d| {
                d.insert("title".into(), "[FIRING:1]".into());
            },
            "`event.data.title`",
            "used as the alert's name",
        ),
        (
            |d| {
                d.insert("created_at".into(), "last tuesday".into());
            },
            "`event.data.created_at`",
            "RFC 3339",
        ),
        (
            |d| {
                d.insert("priority".into(), "P1".into());
            },
            "`event.data.priority`",
            "reference object",
        ),
        (
            |d| {
                d.insert("service".into(), serde_json::json!({"summary": 7}));
            },
            "`event.data.service.summary`",
            "number 7",
        ),
        (
            |d| {
                d.insert("urgency".into(), true.into());
            },
            "`event.data.urgency`",
            "boolean true",
        ),
        (
            |d| {
                d.insert("incident_key".into(), serde_json::json!({}));
            },
            "`event.data.incident_key`",
            "an object",
        ),
    ];
    for (edit, field, expected) in edits {
        let e = err(&triggered_with(edit));
        assert!(e.contains(field), "{e} should name {field}");
        assert!(e.contains(expected), "{e} should say {expected}");
    }
}

#[test]
fn null_optional_incident_fields_are_absent() {
    let body = triggered_with(|d| {
        for key in [
            "priority",
            "service",
            "urgency",
            "incident_key",
            "created_at",
            "html_url",
        ] {
            d.insert(key.into(), Value::Null);
        }
    });
    let alert = parse(&body).alert.unwrap();
    for key in ["priority", "service", "urgency", "incident_key"] {
        assert_eq!(alert.label(key), None, "{key}");
    }
    assert_eq!(alert.starts_at, None);
}

#[test]
fn deeply_nested_json_is_an_error_not_a_stack_overflow() {
    let body = format!("{}{}", "{\"event\":".repeat(50_000), "}".repeat(50_000));
    assert!(err(&body).contains("not valid JSON"));
}

// --- robustness -------------------------------------------------------------------------

/// Runs every webhook parser on `body`; none may panic.
fn run_every_parser(body: &[u8]) {
    let _ = parse_pagerduty_webhook(body);
    let _ = crate::generic::parse_generic_alerts(body);
    let _ = crate::alert::parse_alertmanager_webhook(body);
}

fn no_panic_on(body: &[u8], what: &str) {
    if std::panic::catch_unwind(|| run_every_parser(body)).is_err() {
        panic!(
            "a parser panicked on {what}: {:?}",
            String::from_utf8_lossy(body)
        );
    }
}

#[test]
fn truncated_and_byte_flipped_webhooks_never_panic() {
    let fixtures = [
        TRIGGERED,
        ACKNOWLEDGED,
        RESOLVED,
        PING,
        ALERTMANAGER,
        crate::generic::tests::SAMPLE,
    ];
    let mut inputs = 0usize;
    for fixture in fixtures {
        let bytes = fixture.as_bytes();
        for end in 0..=bytes.len() {
            no_panic_on(&bytes[..end], &format!("truncation at {end}"));
            inputs += 1;
        }
        // One replacement per position, cycling through bytes that break JSON structure,
        // strings, numbers and UTF-8 in different ways (0xff stands for "invert the byte").
        for (i, &original) in bytes.iter().enumerate() {
            let replacement = match [0xff, b'"', b'}', b'0', b'\\', 0xc3][i % 6] {
                0xff => original ^ 0xff,
                other => other,
            };
            let mut flipped = bytes.to_vec();
            flipped[i] = replacement;
            no_panic_on(&flipped, &format!("byte {i} set to {replacement:#04x}"));
            inputs += 1;
        }
        // Multi-byte mutations from a fixed-seed xorshift.
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for round in 0..500 {
            let mut mutated = bytes.to_vec();
            for _ in 0..1 + next() % 8 {
                let at = (next() as usize) % mutated.len();
                mutated[at] = next() as u8;
            }
            let keep = (next() as usize) % (mutated.len() + 1);
            mutated.truncate(keep.max(mutated.len() / 2));
            no_panic_on(&mutated, &format!("mutation round {round}"));
            inputs += 1;
        }
    }
    assert!(inputs > 20_000, "only {inputs} inputs tried");
}
