//! Unit tests of the simulated API server: ages as kubectl prints them, selectors, query decoding.

#![allow(clippy::unwrap_used)]
use super::*;

#[test]
fn human_duration_matches_kubectl() {
    let d = chrono::Duration::seconds;
    assert_eq!(human_duration(d(5)), "5s");
    assert_eq!(human_duration(d(119)), "119s");
    assert_eq!(human_duration(d(185)), "3m5s");
    assert_eq!(human_duration(d(600)), "10m");
    assert_eq!(human_duration(d(3 * 3600 + 120)), "3h2m");
    assert_eq!(human_duration(d(30 * 3600)), "30h");
    assert_eq!(human_duration(d(3 * 86400 + 3600)), "3d1h");
    assert_eq!(human_duration(d(40 * 86400)), "40d");
}

#[test]
fn label_selectors_handle_sets_and_negation() {
    let o = json!({"metadata": {"labels": {"app": "a", "tier": "web"}}});
    let q = |s: &str| vec![("labelSelector".to_owned(), s.to_owned())];
    assert!(selected(&o, &q("app=a,tier in (web,api)")).unwrap());
    assert!(!selected(&o, &q("app=a,tier notin (web)")).unwrap());
    assert!(selected(&o, &q("app,!missing")).unwrap());
    assert!(!selected(&o, &q("app!=a")).unwrap());
}

#[test]
fn field_selectors_read_nested_fields() {
    let o = json!({"involvedObject": {"name": "p", "uid": "u"}, "metadata": {"namespace": "n"}});
    let q = |s: &str| vec![("fieldSelector".to_owned(), s.to_owned())];
    assert!(selected(&o, &q("involvedObject.name=p,metadata.namespace=n")).unwrap());
    assert!(!selected(&o, &q("involvedObject.uid!=u")).unwrap());
    assert!(selected(&o, &q("bogus")).is_err());
}

#[test]
fn percent_decoding() {
    assert_eq!(
        url_decode_pairs("fieldSelector=involvedObject.name%3Dp%2CinvolvedObject.namespace%3Dn"),
        vec![(
            "fieldSelector".to_owned(),
            "involvedObject.name=p,involvedObject.namespace=n".to_owned()
        )]
    );
}
