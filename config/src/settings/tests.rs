#![allow(clippy::unwrap_used)]
use super::*;
use squad_protocols::Member;

#[test]
fn empty_file_gives_the_defaults() {
    assert_eq!(
        Settings::from_toml("squad.toml", "").unwrap(),
        Settings::default()
    );
}

#[test]
fn unknown_key_is_an_error_naming_it() {
    let err = Settings::from_toml("squad.toml", "[remediation.memory]\nheadroom = 20\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("squad.toml") && err.contains("headroom"),
        "{err}"
    );
}

#[test]
fn bad_quantity_names_the_field() {
    let err = Settings::from_toml("squad.toml", "[remediation.memory]\nround_to = \"lots\"\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("round_to") || err.contains("quantity"),
        "{err}"
    );
}

#[test]
fn zero_headroom_is_rejected() {
    let err = Settings::from_toml("squad.toml", "[remediation.memory]\nheadroom_percent = 0\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("remediation.memory.headroom_percent"), "{err}");
}

#[test]
fn alertmanager_and_the_alert_grace_parse_and_are_validated() {
    let s = Settings::from_toml(
        "squad.toml",
        "[alertmanager]\nurl = \"http://alertmanager.monitoring:9093\"\n[verification]\nalert_grace_minutes = 20\n",
    )
    .unwrap();
    assert_eq!(
        s.alertmanager.url.as_deref(),
        Some("http://alertmanager.monitoring:9093")
    );
    assert_eq!(s.verification.alert_grace_minutes, 20);
    assert_eq!(Settings::default().verification.alert_grace_minutes, 15);
    for (text, field) in [
        (
            "[alertmanager]\nurl = \"alertmanager:9093\"\n",
            "alertmanager.url",
        ),
        (
            "[alertmanager]\ntimeout_seconds = 0\n",
            "alertmanager.timeout_seconds",
        ),
    ] {
        let err = Settings::from_toml("squad.toml", text)
            .unwrap_err()
            .to_string();
        assert!(err.contains(&format!("`{field}`")), "{field}: {err}");
    }
}

const LLM: &str = r#"
[llm]
default = "local"
[llm.profiles.local]
provider = "openai_compatible"
base_url = "http://127.0.0.1:8081/v1"
model = "smollm2"
api_key_env = "OPENAI_API_KEY"
tool_mode = "json_schema"
timeout_seconds = 60
max_concurrent = 2
max_retries = 3
[llm.profiles.cloud]
provider = "openai"
model = "gpt-4.1-mini"
[llm.members]
scribe = "cloud"
[llm.budget]
max_calls_per_member = 8
max_tokens_per_incident = 200000
max_wall_seconds_per_member = 300
"#;

#[test]
fn no_llm_section_means_no_model() {
    assert_eq!(Settings::from_toml("squad.toml", "").unwrap().llm, None);
}

#[test]
fn llm_profiles_members_and_budget_parse() {
    let llm = Settings::from_toml("squad.toml", LLM).unwrap().llm.unwrap();
    let local = &llm.profiles["local"];
    assert_eq!(local.provider, LlmProvider::OpenaiCompatible);
    assert_eq!(local.tool_mode, LlmToolMode::JsonSchema);
    assert_eq!(local.api_key_env(), Some("OPENAI_API_KEY"));
    let cloud = &llm.profiles["cloud"];
    assert_eq!(cloud.base_url(), LlmProfile::OPENAI_BASE_URL);
    assert_eq!(cloud.tool_mode, LlmToolMode::Auto);
    assert_eq!(llm.profile_for(Member::Scribe).unwrap().0, "cloud");
    assert_eq!(llm.profile_for(Member::Belanna).unwrap().0, "local");
    assert_eq!(llm.budget.member_budget().max_calls, 8);
}

#[test]
fn a_single_profile_needs_no_default() {
    let text = "[llm.profiles.only]\nbase_url = \"http://127.0.0.1:1/v1\"\nmodel = \"m\"\n";
    let llm = Settings::from_toml("squad.toml", text)
        .unwrap()
        .llm
        .unwrap();
    assert_eq!(llm.profile_for(Member::Worf).unwrap().0, "only");
    assert_eq!(llm.profiles["only"].api_key_env(), None);
}

fn llm_error(text: &str) -> String {
    Settings::from_toml("squad.toml", text)
        .unwrap_err()
        .to_string()
}

#[test]
fn llm_validation_names_the_field() {
    // (text to replace in LLM, its replacement, the field the error must name)
    let edits = [
        ("default = \"local\"", "default = \"nope\"", "llm.default"),
        ("default = \"local\"", "", "llm.default"),
        (
            "scribe = \"cloud\"",
            "scribe = \"nope\"",
            "llm.members.scribe",
        ),
        (
            "scribe = \"cloud\"",
            "spock = \"cloud\"",
            "llm.members.spock",
        ),
        (
            "base_url = \"http://127.0.0.1:8081/v1\"",
            "",
            "llm.profiles.local.base_url",
        ),
        (
            "http://127.0.0.1",
            "ftp://127.0.0.1",
            "llm.profiles.local.base_url",
        ),
        ("model = \"smollm2\"", "", "llm.profiles.local.model"),
        (
            "timeout_seconds = 60",
            "timeout_seconds = 0",
            "llm.profiles.local.timeout_seconds",
        ),
        (
            "max_concurrent = 2",
            "max_concurrent = 0",
            "llm.profiles.local.max_concurrent",
        ),
        (
            "max_calls_per_member = 8",
            "max_calls_per_member = 0",
            "llm.budget.max_calls_per_member",
        ),
    ];
    let azure = "[llm.profiles.az]\nprovider = \"azure\"\n\
                 base_url = \"https://x.openai.azure.com\"\napi_version = \"2024-10-21\"\n";
    let cases = edits
        .iter()
        .map(|(from, to, field)| (LLM.replace(from, to), *field))
        .chain([
            ("[llm]\n".to_string(), "llm.profiles"),
            (azure.to_string(), "llm.profiles.az.deployment"),
        ]);
    for (text, field) in cases {
        let err = llm_error(&text);
        assert!(err.contains(&format!("`{field}`")), "{field}: {err}");
    }
    let err = llm_error(&LLM.replace("\"openai_compatible\"", "\"anthropic\""));
    assert!(err.contains("provider"), "{err}");
}

#[test]
fn a_key_pasted_as_api_key_env_is_rejected_without_echoing_it() {
    let err = llm_error(&LLM.replace(
        "api_key_env = \"OPENAI_API_KEY\"",
        "api_key_env = \"sk-live-secret-123\"",
    ));
    assert!(err.contains("llm.profiles.local.api_key_env"), "{err}");
    assert!(!err.contains("sk-live-secret-123"), "{err}");
}

#[test]
fn token_hashes_tls_and_rate_limits_parse_with_their_defaults() {
    let hash = format!("sha256:{}", "ab".repeat(32));
    let s = Settings::from_toml(
        "squad.toml",
        &format!(
            "[server.auth]\ntoken_hashes = [\"{hash}\"]\n[server.tls]\ncert_file = \"/etc/squad/tls.crt\"\nkey_file = \"/etc/squad/tls.key\"\n"
        ),
    )
    .unwrap();
    assert_eq!(s.server.auth.token_hashes, vec![hash]);
    assert!(s.server.auth.any());
    let tls = s.server.tls.unwrap();
    assert_eq!(
        (tls.reload_seconds, tls.handshake_timeout_seconds),
        (30, 10)
    );
    assert_eq!(tls.client_ca_file, None);
    assert_eq!(
        (s.server.rate_limit.per_second, s.server.rate_limit.burst),
        (100, 200)
    );
    assert!(Settings::default().server.tls.is_none());
}

#[test]
fn a_bad_token_hash_names_its_index_and_the_expected_form() {
    for bad in [
        "ab".repeat(32),
        format!("sha256:{}", "ab".repeat(31)),
        format!("sha256:{}", "zz".repeat(32)),
        format!("sha1:{}", "ab".repeat(32)),
    ] {
        let good = format!("sha256:{}", "CD".repeat(32));
        let err = Settings::from_toml(
            "squad.toml",
            &format!("[server.auth]\ntoken_hashes = [\"{good}\", \"{bad}\"]\n"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("server.auth.token_hashes[1]")
                && err.contains("64 hex digits")
                && err.contains("squad token hash"),
            "{bad}: {err}"
        );
    }
}

#[test]
fn tls_and_rate_limit_mistakes_name_the_field() {
    for (text, field) in [
        (
            "[server.tls]\ncert_file = \"\"\nkey_file = \"k.pem\"\n",
            "server.tls.cert_file",
        ),
        (
            "[server.tls]\ncert_file = \"c.pem\"\nkey_file = \"k.pem\"\nreload_seconds = 0\n",
            "server.tls.reload_seconds",
        ),
        (
            "[server.tls]\ncert_file = \"c.pem\"\nkey_file = \"k.pem\"\nhandshake_timeout_seconds = 0\n",
            "server.tls.handshake_timeout_seconds",
        ),
        ("[server.tls]\ncert_file = \"c.pem\"\n", "key_file"),
        (
            "[server.rate_limit]\nburst = 0\n",
            "server.rate_limit.burst",
        ),
    ] {
        let err = Settings::from_toml("squad.toml", text)
            .unwrap_err()
            .to_string();
        assert!(err.contains(field), "{text}: {err}");
    }
    // 0 per second disables the limit; then the burst does not matter.
    assert!(
        Settings::from_toml(
            "squad.toml",
            "[server.rate_limit]\nper_second = 0\nburst = 0\n"
        )
        .is_ok()
    );
}

#[test]
fn loopback_listeners_are_told_apart() {
    let mut s = ServerSettings::default();
    assert!(s.listens_on_loopback());
    for (listen, loopback) in [
        ("0.0.0.0:8080", false),
        ("10.0.0.7:8080", false),
        ("[::1]:8080", true),
        ("[::]:8080", false),
        ("127.0.0.2:9", true),
    ] {
        s.listen = listen.into();
        assert_eq!(s.listens_on_loopback(), loopback, "{listen}");
    }
}

#[test]
fn a_postgres_store_url_is_checked_and_may_come_from_the_environment() {
    let ok = Settings::from_toml(
        "squad.toml",
        "[store]\nurl = \"postgres://squad@db.example:5432/squad?sslmode=require\"\n",
    )
    .unwrap();
    assert!(ok.store.url.is_some());
    for bad in [
        "[store]\nurl = \"mysql://squad@db/squad\"\n",
        "[store]\nurl = \"postgres://\"\n",
        "[store]\nurl = \"postgres://db/squad\"\npath = \"x.redb\"\n",
    ] {
        let err = Settings::from_toml("squad.toml", bad)
            .unwrap_err()
            .to_string();
        assert!(err.contains("store.url"), "{bad}: {err}");
    }
    let mut s = Settings::from_toml("squad.toml", "[store]\npath = \"x.redb\"\n").unwrap();
    s.apply_env(|k| (k == "SQUAD_STORE_URL").then(|| "postgres://u:p@h/d".to_owned()));
    assert_eq!(s.store.url.as_deref(), Some("postgres://u:p@h/d"));
    assert_eq!(s.store.path, None);
    s.validate("squad.toml").unwrap();
}
