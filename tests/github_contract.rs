//! After the whole suite: every request the GitHub adapter sent to a simulated GitHub in any test
//! (the test processes and every `squad` process they started) against GitHub's official OpenAPI
//! description. `scripts/test` sets `SQUAD_GITHUB_REQUEST_LOG_DIR` for the suite, then runs this
//! test with it; run alone without the variable, it checks nothing and says so.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use squad_sim::github_api::Recorded;
use squad_testkit::openapi;

#[test]
fn every_github_request_of_the_suite_is_in_github_s_openapi_description() {
    let Some(dir) = std::env::var_os("SQUAD_GITHUB_REQUEST_LOG_DIR") else {
        eprintln!("SKIPPED: SQUAD_GITHUB_REQUEST_LOG_DIR is not set (scripts/test sets it)");
        return;
    };
    if std::env::var("SQUAD_GITHUB_CONTRACT_CHECK").as_deref() != Ok("1") {
        eprintln!("SKIPPED: the suite is still running (scripts/test runs this check at the end)");
        return;
    }
    let Some(spec) = openapi::openapi().unwrap() else {
        return;
    };
    let mut requests = Vec::new();
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        files += 1;
        for line in std::fs::read_to_string(&path).unwrap().lines() {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                continue; // a line cut by a killed process
            };
            requests.push(Recorded {
                method: v["method"].as_str().unwrap().into(),
                path: v["path"].as_str().unwrap().into(),
                body: v["body"].clone(),
            });
        }
    }
    assert!(
        !requests.is_empty(),
        "no GitHub request was logged in {}",
        dir.to_string_lossy()
    );
    let violations = openapi::contract_violations(&spec, &requests).unwrap();
    let mut unique = violations.clone();
    unique.sort();
    unique.dedup();
    assert!(
        violations.is_empty(),
        "{} of {} requests off GitHub's API ({} distinct):\n{}",
        violations.len(),
        requests.len(),
        unique.len(),
        unique.join("\n")
    );
    println!(
        "{} GitHub requests from {files} process(es) checked against GitHub's OpenAPI description {}",
        requests.len(),
        spec["info"]["version"]
    );
}
