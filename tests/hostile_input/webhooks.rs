//! Every webhook squad serves, over real HTTP against `squad serve`, with each field at its
//! extremes: empty, 1 MiB, control characters, NUL, RTL overrides, numbers out of range,
//! timestamps far off or unparsable, `startsAt` after `endsAt`, missing fields, duplicate keys,
//! wrong JSON types, bytes that are not UTF-8, 10,000 levels of nesting. Each is answered
//! 400/401/413 with a JSON error naming the field, or accepted with its text sanitized — never a
//! 500 and never a dead daemon — and every alert answered 202 is processed by the intake.

use hmac::{KeyInit, Mac};
use serde_json::{Value, json};

use super::daemon::{Daemon, GITHUB_SECRET, TOKEN};
use super::{MIB_KIB, peak_growth_kib, reset_peak};

const MIB: usize = 1 << 20;
const POD: &str = "payment-service-7d4b9c-xk2p";

/// The captured Alertmanager 0.25 delivery's shape, with `edit` applied to its one alert.
fn am(edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut hook = json!({
        "version": "4", "status": "firing", "receiver": "squad",
        "groupKey": "{}:{alertname=\"KubernetesPodOOMKilled\"}",
        "alerts": [{
            "status": "firing",
            "labels": {"alertname": "KubernetesPodOOMKilled", "namespace": "production",
                       "pod": POD, "severity": "critical"},
            "annotations": {"summary": "payment-api was OOMKilled"},
            "startsAt": "2026-11-23T19:21:20.953Z", "endsAt": "0001-01-01T00:00:00Z",
            "fingerprint": "f884382574979cd7"
        }]
    });
    edit(&mut hook);
    serde_json::to_vec(&hook).unwrap()
}

/// The value at a JSON pointer, created when absent (objects only).
fn at<'v>(mut v: &'v mut Value, pointer: &str) -> &'v mut Value {
    for part in pointer.split('/').skip(1) {
        v = match part.parse::<usize>() {
            Ok(i) if v.is_array() => &mut v[i],
            _ => &mut v[part],
        };
    }
    v
}

/// A generic alert body with `edit` applied to its one alert.
fn generic(edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut alert = json!({"name": "KubernetesPodOOMKilled", "status": "firing",
        "labels": {"namespace": "production", "pod": POD}});
    edit(&mut alert);
    serde_json::to_vec(&json!({ "alerts": [alert] })).unwrap()
}

/// A PagerDuty incident.triggered event with `edit` applied to the event.
fn pagerduty(edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut event = json!({"id": "01DEN2MQ7BGT7S1ZR8TSC6SPWX", "event_type": "incident.triggered",
        "resource_type": "incident", "occurred_at": "2026-11-23T19:21:20Z",
        "data": {"id": "Q2OFMEBLB1OQ9Y", "type": "incident",
                 "title": format!("KubernetesPodOOMKilled namespace=production pod={POD}"),
                 "created_at": "2026-11-23T19:21:20Z"}});
    edit(&mut event);
    serde_json::to_vec(&json!({ "event": event })).unwrap()
}

/// A GitHub `pull_request` delivery about squad's repository, with `edit` applied.
fn github(edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut v = json!({"action": "closed", "number": 7,
        "pull_request": {"number": 7, "merged": false},
        "repository": {"full_name": "acme/production-gitops"}, "sender": {"login": "octocat"}});
    edit(&mut v);
    serde_json::to_vec(&v).unwrap()
}

fn sign(body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(GITHUB_SECRET.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// `levels` nested arrays, as JSON.
fn nested(levels: usize) -> String {
    format!("{}{}", "[".repeat(levels), "]".repeat(levels))
}

/// A body with its `"KubernetesPodOOMKilled"` alert name replaced by raw bytes (not UTF-8).
fn with_raw(body: Vec<u8>, raw: &[u8]) -> Vec<u8> {
    let text = b"OOMKilled";
    let at = body.windows(text.len()).position(|w| w == text).unwrap();
    [&body[..at], raw, &body[at + text.len()..]].concat()
}

enum Want {
    /// Refused with this status, the error naming this.
    Refused(u16, &'static str),
    /// Answered 202 with this many alerts accepted.
    Accepted(u64),
    /// Answered with this status (a delivery acknowledged or ignored).
    Answered(u16),
}

struct Case {
    what: &'static str,
    path: &'static str,
    body: Vec<u8>,
    headers: Vec<(Vec<u8>, Vec<u8>)>,
    want: Want,
}

fn case(what: &'static str, path: &'static str, body: Vec<u8>, want: Want) -> Case {
    Case {
        what,
        path,
        body,
        headers: Vec::new(),
        want,
    }
}

const AM: &str = "/v1/alerts/alertmanager";
const GENERIC: &str = "/v1/alerts";
const PD: &str = "/v1/alerts/pagerduty";
const GH: &str = "/v1/webhooks/github";

fn alertmanager_cases() -> Vec<Case> {
    use Want::*;
    let set = |pointer: &'static str, value: Value| am(move |h| *at(h, pointer) = value);
    let big = "x".repeat(MIB);
    vec![
        case(
            "empty version",
            AM,
            am(|h| h["version"] = json!("")),
            Refused(400, "`version`"),
        ),
        case(
            "version as a number",
            AM,
            am(|h| h["version"] = json!(4)),
            Refused(400, "`version`"),
        ),
        case(
            "no version",
            AM,
            am(|h| {
                h.as_object_mut().unwrap().remove("version");
            }),
            Refused(400, "`version`"),
        ),
        case(
            "duplicate version, the last wins",
            AM,
            String::from_utf8(am(|_| {}))
                .unwrap()
                .replace("\"version\":\"4\"", "\"version\":\"4\",\"version\":\"3\"")
                .into_bytes(),
            Refused(400, "`version`"),
        ),
        case(
            "alerts as an object",
            AM,
            am(|h| h["alerts"] = json!({})),
            Refused(400, "`alerts`"),
        ),
        case(
            "no alerts",
            AM,
            am(|h| h["alerts"] = json!([])),
            Refused(400, "`alerts`"),
        ),
        case(
            "an alert that is a number",
            AM,
            am(|h| h["alerts"] = json!([1])),
            Refused(400, "`alerts[0]`"),
        ),
        case(
            "status in capitals",
            AM,
            set("/alerts/0/status", json!("FIRING")),
            Refused(400, "`alerts[0].status`"),
        ),
        case(
            "status as a number",
            AM,
            set("/alerts/0/status", json!(1)),
            Refused(400, "`alerts[0].status`"),
        ),
        case(
            "labels as an array",
            AM,
            set("/alerts/0/labels", json!([])),
            Refused(400, "`alerts[0].labels`"),
        ),
        case(
            "a label that is a number",
            AM,
            set("/alerts/0/labels/severity", json!(2)),
            Refused(400, "`alerts[0].labels.severity`"),
        ),
        case(
            "a label of 1e400",
            AM,
            String::from_utf8(set("/alerts/0/labels/severity", json!("__N__")))
                .unwrap()
                .replace("\"__N__\"", "1e400")
                .into_bytes(),
            Refused(400, "number out of range"),
        ),
        case(
            "no alertname",
            AM,
            am(|h| {
                h["alerts"][0]["labels"]
                    .as_object_mut()
                    .unwrap()
                    .remove("alertname");
            }),
            Refused(400, "`alerts[0].labels.alertname`"),
        ),
        case(
            "an empty namespace",
            AM,
            set("/alerts/0/labels/namespace", json!("")),
            Refused(400, "`alerts[0].labels.namespace`"),
        ),
        case(
            "a 1 MiB namespace",
            AM,
            set("/alerts/0/labels/namespace", json!(big)),
            Refused(400, "`alerts[0].labels.namespace`"),
        ),
        case(
            "a pod that is a path",
            AM,
            set("/alerts/0/labels/pod", json!("../../secrets/db")),
            Refused(400, "`alerts[0].labels.pod`"),
        ),
        case(
            "a pod with a NUL",
            AM,
            set("/alerts/0/labels/pod", json!(format!("{POD}\u{0}"))),
            Refused(400, "`alerts[0].labels.pod`"),
        ),
        case(
            "startsAt unparsable",
            AM,
            set("/alerts/0/startsAt", json!("yesterday")),
            Refused(400, "`alerts[0].startsAt`"),
        ),
        case(
            "startsAt past year 9999",
            AM,
            set("/alerts/0/startsAt", json!("+275760-09-13T00:00:00Z")),
            Refused(400, "`alerts[0].startsAt`"),
        ),
        case(
            "startsAt as a number",
            AM,
            set("/alerts/0/startsAt", json!(1_700_000_000)),
            Refused(400, "`alerts[0].startsAt`"),
        ),
        case(
            "a string that is not UTF-8",
            AM,
            with_raw(am(|_| {}), b"OOM\xff\xfeKilled"),
            Refused(400, "not valid JSON"),
        ),
        case(
            "a lone surrogate",
            AM,
            String::from_utf8(am(|_| {}))
                .unwrap()
                .replace("OOMKilled", "OOM\\ud800Killed")
                .into_bytes(),
            Refused(400, "not valid JSON"),
        ),
        case(
            "10,000 levels of nesting",
            AM,
            format!("{{\"version\":\"4\",\"alerts\":{}}}", nested(10_000)).into_bytes(),
            Refused(400, "recursion limit"),
        ),
        case(
            "an array, not an object",
            AM,
            b"[]".to_vec(),
            Refused(400, "JSON object"),
        ),
        case(
            "an empty body",
            AM,
            Vec::new(),
            Refused(400, "not valid JSON"),
        ),
        case(
            "a body over the limit",
            AM,
            vec![b' '; 4 * MIB + 1],
            Refused(413, "length limit"),
        ),
        case(
            "startsAt in year 1",
            AM,
            set("/alerts/0/startsAt", json!("0001-01-01T00:00:00Z")),
            Accepted(1),
        ),
        case(
            "startsAt in year 9999",
            AM,
            set("/alerts/0/startsAt", json!("9999-12-31T23:59:59Z")),
            Accepted(1),
        ),
        case(
            "startsAt after endsAt",
            AM,
            am(|h| {
                h["alerts"][0]["startsAt"] = json!("2026-11-23T20:00:00Z");
                h["alerts"][0]["endsAt"] = json!("2026-11-23T19:00:00Z");
            }),
            Accepted(1),
        ),
        case(
            "a duplicate label, the last wins",
            AM,
            String::from_utf8(am(|_| {}))
                .unwrap()
                .replace(
                    "\"severity\":\"critical\"",
                    "\"severity\":\"critical\",\"severity\":\"page\"",
                )
                .into_bytes(),
            Accepted(1),
        ),
        case(
            "an RTL override and escapes in the name",
            AM,
            am(|h| {
                h["alerts"][0]["labels"]["alertname"] =
                    json!("OOMKilled\u{202e}exe.\u{1b}[2J\u{0}");
                h["groupKey"] = json!("{}:{alertname=\"rtl\"}");
            }),
            Accepted(1),
        ),
        case(
            "a 1 MiB annotation of control characters",
            AM,
            set(
                "/alerts/0/annotations/description",
                json!("\u{7}\u{0}\r\n".repeat(MIB / 16)),
            ),
            Accepted(1),
        ),
        case(
            "a 1 MiB label value",
            AM,
            set("/alerts/0/labels/severity", json!(big)),
            Accepted(1),
        ),
        case(
            "an empty fingerprint and group key",
            AM,
            am(|h| {
                h["groupKey"] = json!("");
                h["alerts"][0]["fingerprint"] = json!("");
            }),
            Accepted(1),
        ),
    ]
}

fn generic_cases() -> Vec<Case> {
    use Want::*;
    let set = |key: &'static str, value: Value| generic(move |a| a[key] = value);
    vec![
        case(
            "an empty name",
            GENERIC,
            set("name", json!("")),
            Refused(400, "`alerts[0].name`"),
        ),
        case(
            "a name that is a number",
            GENERIC,
            set("name", json!(7)),
            Refused(400, "`alerts[0].name`"),
        ),
        case(
            "a status in capitals",
            GENERIC,
            set("status", json!("FIRING")),
            Refused(400, "`alerts[0].status`"),
        ),
        case(
            "a label that is an object",
            GENERIC,
            generic(|a| a["labels"]["namespace"] = json!({})),
            Refused(400, "`alerts[0].labels.namespace`"),
        ),
        case(
            "camelCase startsAt",
            GENERIC,
            set("startsAt", json!("2026-11-23T19:21:00Z")),
            Refused(400, "`alerts[0].startsAt`"),
        ),
        case(
            "starts_at unparsable",
            GENERIC,
            set("starts_at", json!("2026-13-45T99:00:00Z")),
            Refused(400, "`alerts[0].starts_at`"),
        ),
        case(
            "1,001 alerts",
            GENERIC,
            serde_json::to_vec(&json!({"alerts": vec![json!({"name": "X"}); 1001]})).unwrap(),
            Refused(400, "`alerts`"),
        ),
        case(
            "not UTF-8",
            GENERIC,
            with_raw(generic(|_| {}), b"\xc3\x28"),
            Refused(400, "not valid JSON"),
        ),
        case(
            "10,000 levels of nesting",
            GENERIC,
            nested(10_000).into_bytes(),
            Refused(400, "recursion limit"),
        ),
        case(
            "a NUL and an RTL override in the name",
            GENERIC,
            set("name", json!("OOM\u{0}\u{202e}Killed")),
            Accepted(1),
        ),
        case(
            "a 1 MiB annotation",
            GENERIC,
            generic(|a| a["annotations"] = json!({"description": "é".repeat(MIB / 2)})),
            Accepted(1),
        ),
    ]
}

fn pagerduty_cases() -> Vec<Case> {
    use Want::*;
    let title = |t: String| pagerduty(move |e| e["data"]["title"] = json!(t));
    vec![
        case(
            "not an object",
            PD,
            b"\"incident\"".to_vec(),
            Refused(400, "JSON object"),
        ),
        case("no event", PD, b"{}".to_vec(), Refused(400, "`event`")),
        case(
            "an event type that is a number",
            PD,
            pagerduty(|e| e["event_type"] = json!(3)),
            Refused(400, "`event.event_type`"),
        ),
        case(
            "another resource type",
            PD,
            pagerduty(|e| e["resource_type"] = json!("service")),
            Refused(400, "`event.resource_type`"),
        ),
        case(
            "no incident id",
            PD,
            pagerduty(|e| {
                e["data"].as_object_mut().unwrap().remove("id");
            }),
            Refused(400, "`event.data.id`"),
        ),
        case(
            "created_at unparsable",
            PD,
            pagerduty(|e| e["data"]["created_at"] = json!("soon")),
            Refused(400, "`event.data.created_at`"),
        ),
        case(
            "not UTF-8",
            PD,
            with_raw(pagerduty(|_| {}), b"\xed\xa0\x80"),
            Refused(400, "not valid JSON"),
        ),
        case(
            "10,000 levels of nesting",
            PD,
            format!("{{\"event\":{}}}", nested(10_000)).into_bytes(),
            Refused(400, "recursion limit"),
        ),
        case(
            "a 1 MiB title with an RTL override",
            PD,
            title(format!(
                "KubernetesPodOOMKilled namespace=production pod={POD} \u{202e}{}",
                "y".repeat(MIB)
            )),
            Accepted(1),
        ),
        case(
            "an acknowledged incident",
            PD,
            pagerduty(|e| e["event_type"] = json!("incident.acknowledged")),
            Accepted(0),
        ),
    ]
}

fn github_cases() -> Vec<Case> {
    use Want::*;
    let signed = |what, body: Vec<u8>, event: &[u8], want| Case {
        what,
        path: GH,
        headers: vec![
            (b"X-GitHub-Event".to_vec(), event.to_vec()),
            (b"X-Hub-Signature-256".to_vec(), sign(&body).into_bytes()),
        ],
        body,
        want,
    };
    vec![
        case(
            "unsigned",
            GH,
            github(|_| {}),
            Refused(401, "X-Hub-Signature-256"),
        ),
        signed(
            "a negative number",
            github(|v| v["pull_request"]["number"] = json!(-1)),
            b"pull_request",
            Refused(400, "`pull_request.number`"),
        ),
        signed(
            "a number past u64",
            String::from_utf8(github(|_| {}))
                .unwrap()
                .replace("\"number\":7}", "\"number\":18446744073709551616}")
                .into_bytes(),
            b"pull_request",
            Refused(400, "`pull_request.number`"),
        ),
        signed(
            "a number as a string",
            github(|v| v["pull_request"]["number"] = json!("7")),
            b"pull_request",
            Refused(400, "`pull_request.number`"),
        ),
        signed(
            "no repository",
            github(|v| {
                v.as_object_mut().unwrap().remove("repository");
            }),
            b"pull_request",
            Refused(400, "`repository.full_name`"),
        ),
        signed(
            "not UTF-8",
            b"{\"action\":\"\xff\"}".to_vec(),
            b"pull_request",
            Refused(400, "not JSON"),
        ),
        signed(
            "10,000 levels of nesting",
            nested(10_000).into_bytes(),
            b"issue_comment",
            Refused(400, "recursion limit"),
        ),
        signed(
            "an event header that is not UTF-8",
            github(|_| {}),
            b"pull\xffrequest",
            Refused(400, "X-GitHub-Event"),
        ),
        signed(
            "a 1 MiB comment with an RTL override",
            github(|v| {
                v["comment"] = json!({"body": format!("\u{202e}{}", "z".repeat(MIB))});
                v["issue"] = json!({"number": 7});
            }),
            b"issue_comment",
            Answered(202),
        ),
        signed(
            "an event squad does not follow",
            github(|_| {}),
            b"push",
            Answered(202),
        ),
    ]
}

#[test]
fn every_webhook_field_at_its_extremes_is_refused_naming_it_or_accepted_sanitized() {
    let d = Daemon::start(4 * MIB);
    let mut cases = alertmanager_cases();
    cases.extend(generic_cases());
    cases.extend(pagerduty_cases());
    cases.extend(github_cases());
    // Headers: an Authorization that is not UTF-8, and one 10 KB long.
    let long = format!("Bearer {}", "t".repeat(10_000));
    cases.push(Case {
        headers: vec![(b"Authorization".to_vec(), b"Bearer \xff\xfe".to_vec())],
        ..case(
            "an Authorization that is not UTF-8",
            GENERIC,
            generic(|_| {}),
            Want::Refused(401, "Authorization"),
        )
    });
    cases.push(Case {
        headers: vec![(b"Authorization".to_vec(), long.into_bytes())],
        ..case(
            "a 10 KB bearer token",
            GENERIC,
            generic(|_| {}),
            Want::Refused(403, "token"),
        )
    });
    let auth = format!("Bearer {TOKEN}").into_bytes();
    let mut accepted = 0;
    for c in &cases {
        let mut headers: Vec<(&[u8], &[u8])> = c
            .headers
            .iter()
            .map(|(k, v)| (k.as_slice(), v.as_slice()))
            .collect();
        if c.path != GH && !c.headers.iter().any(|(k, _)| k == b"Authorization") {
            headers.push((b"Authorization", &auth));
        }
        let answer = d.send("POST", c.path, &headers, &c.body);
        let text = answer.text();
        let shown: String = text.chars().take(300).collect();
        assert_ne!(answer.status, 500, "{}: {shown}", c.what);
        match c.want {
            Want::Refused(status, mention) => {
                assert_eq!(answer.status, status, "{} {}: {shown}", c.path, c.what);
                let message = answer.json()["error"]["message"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                assert!(
                    message.contains(mention),
                    "{} {}: the error should name {mention:?}: {message}",
                    c.path,
                    c.what
                );
                // The sender's text is quoted, not echoed whole: a 1 MiB field costs no 1 MiB error.
                assert!(message.len() < 2_000, "{}: {} bytes", c.what, message.len());
            }
            Want::Accepted(n) => {
                assert_eq!(answer.status, 202, "{} {}: {shown}", c.path, c.what);
                assert_eq!(answer.json()["accepted"], n, "{}: {shown}", c.what);
                accepted += n;
            }
            Want::Answered(status) => {
                assert_eq!(answer.status, status, "{} {}: {shown}", c.path, c.what)
            }
        }
    }
    println!(
        "{} hostile requests, {accepted} alerts accepted",
        cases.len()
    );
    assert_eq!(d.get("/healthz").status, 200);
    // Every accepted alert reaches the intake's processor.
    d.wait_processed(accepted);
    // What the incidents show of the sender's text: no control or bidirectional character.
    let incidents = d.get("/v1/incidents").json();
    let list = incidents["incidents"].as_array().unwrap();
    assert!(!list.is_empty());
    let shown = serde_json::to_string(list).unwrap();
    // serde_json writes control characters escaped, an RTL override as it is.
    let head: String = shown.chars().take(1_000).collect();
    for bad in ["\u{202e}", "\\u0000", "\\u001b", "\\u0007"] {
        assert!(!shown.contains(bad), "{bad:?} in {head}");
    }
    // The generic alert named "OOM\0\u{202e}Killed" opened its own incident.
    assert!(shown.contains("OOM\u{fffd}\u{fffd}Killed"), "{head}");
}

/// Huge label sets: an alert with 10,000 labels, one with 10,000 annotations, 10,000 alerts in
/// one request, a 1 MiB label value and a 1 MiB alert name: all accepted and processed into the
/// one incident of their workload (the long name's group joins it), with the daemon's peak
/// memory measured.
#[test]
fn huge_label_sets_and_ten_thousand_alerts_are_accepted_with_bounded_memory() {
    let d = Daemon::start(4 * MIB);
    let pid = d.pid();
    let base = reset_peak(&pid);
    let many = |n: usize, prefix: &str| -> serde_json::Map<String, Value> {
        (0..n)
            .map(|i| (format!("{prefix}_{i:05}"), json!(format!("value-{i}"))))
            .collect()
    };
    let labels = am(|h| {
        let l = h["alerts"][0]["labels"].as_object_mut().unwrap();
        l.extend(many(10_000, "label"));
    });
    let annotations = am(|h| h["alerts"][0]["annotations"] = Value::Object(many(10_000, "note")));
    let alerts = am(|h| {
        let one = h["alerts"][0].clone();
        h["alerts"] = (0..10_000)
            .map(|i| {
                let mut a = one.clone();
                a["fingerprint"] = json!(format!("fp-{i}"));
                a["labels"]["replica"] = json!(i.to_string());
                a
            })
            .collect();
    });
    let big_value = am(|h| h["alerts"][0]["labels"]["runbook"] = json!("r".repeat(MIB)));
    let big_name = am(|h| {
        h["groupKey"] = json!("{}:{alertname=\"long\"}");
        h["alerts"][0]["labels"]["alertname"] = json!(format!("Long{}", "n".repeat(MIB)));
    });
    let mut accepted = 0;
    for (what, body, n) in [
        ("10,000 labels", &labels, 1),
        ("10,000 annotations", &annotations, 1),
        ("10,000 alerts", &alerts, 10_000),
        ("a 1 MiB label value", &big_value, 1),
        ("a 1 MiB alert name", &big_name, 1),
    ] {
        let answer = d.post(AM, body);
        assert_eq!(answer.status, 202, "{what}: {}", answer.text());
        assert_eq!(answer.json()["accepted"], n, "{what}");
        accepted += n;
        println!("{what}: a {} byte body accepted", body.len());
    }
    d.wait_processed(accepted);
    // One incident for the workload, every other alert a repeat of it (written to the
    // incident's log every second).
    let mut summary = Vec::new();
    for _ in 0..600 {
        let incidents = d.get("/v1/incidents").json();
        let list = incidents["incidents"].as_array().unwrap().clone();
        let repeats: u64 = list
            .iter()
            .map(|i| i["repeats"].as_u64().unwrap_or(0))
            .sum();
        summary = list
            .iter()
            .map(|i| {
                (
                    i["alert"].as_str().unwrap_or("").len(),
                    i["repeats"].clone(),
                )
            })
            .collect();
        if list.len() == 1 && repeats + 1 == accepted {
            break;
        }
        super::pause();
    }
    assert_eq!(summary.len(), 1, "{summary:?}");
    let repeats: u64 = summary.iter().map(|(_, r)| r.as_u64().unwrap_or(0)).sum();
    assert_eq!(repeats + 1, accepted, "{summary:?}");
    assert_eq!(d.get("/healthz").status, 200);
    let growth = peak_growth_kib(&pid, base);
    println!(
        "squad serve: peak resident set grew {growth} KiB over {accepted} alerts in {} MiB of bodies",
        (labels.len() + annotations.len() + alerts.len() + big_value.len() + big_name.len()) >> 20
    );
    // About 9 MiB of bodies; the daemon's whole crew runs meanwhile.
    assert!(growth < 512 * MIB_KIB, "{growth} KiB");
}
