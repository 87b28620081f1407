//! Unit tests of the redactor: each detector on realistic log, env and manifest lines, what is
//! left alone, placeholder stability, restore, idempotence, and a planted-secrets blob.

#![allow(clippy::unwrap_used)]
use serde_json::json;

use super::*;

fn redactor() -> Redactor {
    Redactor::new(&[]).unwrap()
}

/// Each case on a fresh redactor, so placeholders number from 1.
fn assert_redacts(cases: &[(&str, &str)]) {
    for (input, expected) in cases {
        let r = redactor();
        let redacted = r.redact(input);
        assert_eq!(&redacted, expected, "redacting {input:?}");
        assert_eq!(r.restore(&redacted), *input, "restoring {input:?}");
    }
}

fn assert_untouched(inputs: &[&str]) {
    let r = redactor();
    for input in inputs {
        assert_eq!(r.redact(input), *input, "{input:?} is not a secret");
    }
}

const JWT: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
const PEM: &str = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\nVTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK\n-----END RSA PRIVATE KEY-----";

#[test]
fn secret_assignments_lose_their_value_and_keep_their_key() {
    assert_redacts(&[
        (
            "DB_PASSWORD=hunter2hunter",
            "DB_PASSWORD=[REDACTED:password:1]",
        ),
        (
            "login as admin passwd: Tr0ub4dor3",
            "login as admin passwd: [REDACTED:password:1]",
        ),
        ("pwd=s3cr3t!", "pwd=[REDACTED:password:1]"),
        (
            "secret=abc123def user=bob",
            "secret=[REDACTED:secret:1] user=bob",
        ),
        // Only the exact `secret:<dns-name>/<key>` notation is a reference.
        ("secret: Zx9q/Rk2w8", "secret: [REDACTED:secret:1]"),
        ("secret:Zx9q/Rk2w8", "secret:[REDACTED:secret:1]"),
        ("secret=ledger-db/url", "secret=[REDACTED:secret:1]"),
        ("api_key=abcd1234efgh", "api_key=[REDACTED:api_key:1]"),
        ("X-Api-Key: 0a1b2c3d4e", "X-Api-Key: [REDACTED:api_key:1]"),
        (
            "token=tok_12345abcde, retrying",
            "token=[REDACTED:token:1], retrying",
        ),
        (
            "export GITHUB_TOKEN=abc",
            "export GITHUB_TOKEN=[REDACTED:token:1]",
        ),
        (
            "--db-password=letmein99 --port=5432",
            "--db-password=[REDACTED:password:1] --port=5432",
        ),
        (
            "config.dbPassword => 'let me in'",
            "config.dbPassword => '[REDACTED:password:1]'",
        ),
        (
            "  clientSecret: 9a8b7c6d",
            "  clientSecret: [REDACTED:secret:1]",
        ),
        (
            "  password: \"correct horse battery\"",
            "  password: \"[REDACTED:password:1]\"",
        ),
        (
            r#"{"user":"app","password":"p@ss w\"0rd"}"#,
            r#"{"user":"app","password":"[REDACTED:password:1]"}"#,
        ),
        (
            r#"level=error body="{\"apiKey\":\"k3y-v4lue-123\",\"retry\":true}""#,
            r#"level=error body="{\"apiKey\":\"[REDACTED:api_key:1]\",\"retry\":true}""#,
        ),
        (
            "GET /v1/items?token=abc123&page=2 200",
            "GET /v1/items?token=[REDACTED:token:1]&page=2 200",
        ),
        (
            "host=db user=app password=pg-s3cret dbname=app",
            "host=db user=app password=[REDACTED:password:1] dbname=app",
        ),
        (
            "Password=Pa55word;Server=db",
            "Password=[REDACTED:password:1];Server=db",
        ),
    ]);
}

#[test]
fn kubernetes_env_entries_are_judged_by_their_name() {
    assert_redacts(&[
        (
            "env:\n- name: DB_PASSWORD\n  value: \"hunter2hunter\"\n- name: DB_HOST\n  value: db.prod.svc\n",
            "env:\n- name: DB_PASSWORD\n  value: \"[REDACTED:password:1]\"\n- name: DB_HOST\n  value: db.prod.svc\n",
        ),
        (
            r#"[{"name":"STRIPE_API_KEY","value":"rk_live_51Habc"},{"name":"LOG_LEVEL","value":"debug"}]"#,
            r#"[{"name":"STRIPE_API_KEY","value":"[REDACTED:api_key:1]"},{"name":"LOG_LEVEL","value":"debug"}]"#,
        ),
    ]);
}

#[test]
fn ordinary_identifiers_and_prose_are_not_secrets() {
    assert_untouched(&[
        "commit 3f786850e387550fdab836ed7e6dc881de23001b merged",
        "request_id=0b6c3e2a-5f1d-4c8e-9a7b-2d4e6f8a0c1e uid: 9a7b2d4e-6f8a-4c1e-8b6c-3e2a5f1d0c8e",
        "pod/payment-service-7d4b9c-xk2p restarted; replicaset payment-service-7d4b9c",
        "image: registry.example.com/payments@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "2024-05-01T12:00:00.123Z level=info ts=1714564800 duration=12.5ms",
        "password_policy=strict password_min_length=12",
        "token_expiry=3600 tokenTTL: 5m secretName: db-credentials secret_ref=db",
        "PWD=/app OLDPWD=/ HOME=/root",
        "bypass=true compass=north",
        "invalid password: user admin not found",
        "password:  16 bytes\nusername:  3 bytes",
        "the token: was missing from the request",
        "401 Unauthorized: Bearer token expired",
        "authorization: denied for service account default",
        "Using Basic authentication for the registry",
        "password: ${DB_PASSWORD}",
        "DB_PASSWORD:  <set to the key 'password' in secret 'db'>  Optional: false",
        "DATABASE_URL reads secret:ledger-db/url, which is missing (Secret:db.v2/DB_URL too)",
        "password: ********",
        "password: null",
        "password: \"\"",
        "secretKeyRef: {name: db, key: password}",
        "key: app.kubernetes.io/name",
        "cache_key=user-42",
        "sk-learn-model-server-7d4b9c-xk2p",
        "postgres://db.prod.svc:5432/payments http://localhost:8080/metrics",
        "git clone git@github.com:org/repo.git",
        "DATABASE_URL=postgres://app:${DB_PASSWORD}@db:5432/app",
        "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ\n-----END CERTIFICATE-----",
        "certificate-authority-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUM=",
        "header eyJhbGciOiJIUzI1NiJ9 alone is not a token",
        "AKIA1234 is too short to be a key",
        "OOMKilled: container payments exceeded memory limit 512Mi",
    ]);
}

#[test]
fn authorization_headers_lose_their_credentials() {
    assert_redacts(&[
        (
            "Authorization: Bearer abc123def456ghi789",
            "Authorization: Bearer [REDACTED:token:1]",
        ),
        (
            "authorization=Basic dXNlcjpwYXNzd29yZA==",
            "authorization=Basic [REDACTED:basic_auth:1]",
        ),
        (
            "Proxy-Authorization: Basic YWRtaW46czNjcjN0",
            "Proxy-Authorization: Basic [REDACTED:basic_auth:1]",
        ),
        (
            r#"curl -H "Authorization: token 0123456789abcdef" https://api"#,
            r#"curl -H "Authorization: token [REDACTED:token:1]" https://api"#,
        ),
        (
            "sent bearer 0123456789abcdefXYZ to upstream",
            "sent bearer [REDACTED:token:1] to upstream",
        ),
        (
            "retrying with Basic YWRtaW46czNjcjN0 header",
            "retrying with Basic [REDACTED:basic_auth:1] header",
        ),
    ]);
}

/// Logs cut and mangle base64: unpadded, over-padded, a stray last character, non-zero trailing
/// bits. The detectors read it as leniently as the hand-written decoder the crate replaced.
#[test]
fn basic_credentials_are_recognised_however_their_base64_is_padded() {
    assert_redacts(&[
        (
            "retrying with Basic dXNlcjpwYXNzMQ header",
            "retrying with Basic [REDACTED:basic_auth:1] header",
        ),
        (
            "retrying with Basic YWRtaW46czNjcjN0== header",
            "retrying with Basic [REDACTED:basic_auth:1] header",
        ),
        (
            "retrying with Basic YWRtaW46czNjcjN0x header",
            "retrying with Basic [REDACTED:basic_auth:1] header",
        ),
        (
            "retrying with Basic dXNlcjpwYXNzMR header",
            "retrying with Basic [REDACTED:basic_auth:1] header",
        ),
    ]);
}

#[test]
fn urls_lose_the_password_in_their_credentials() {
    assert_redacts(&[
        (
            "connecting to postgres://payments:Sup3rS3cret!@db.prod.svc:5432/payments",
            "connecting to postgres://payments:[REDACTED:connection_string:1]@db.prod.svc:5432/payments",
        ),
        (
            "mysql://root:toor123@mysql:3306/app",
            "mysql://root:[REDACTED:connection_string:1]@mysql:3306/app",
        ),
        (
            "mongodb+srv://admin:m0ng0-P4ss@cluster0.abc.mongodb.net/db",
            "mongodb+srv://admin:[REDACTED:connection_string:1]@cluster0.abc.mongodb.net/db",
        ),
        (
            "redis://:r3d1sP4ss@redis:6379/0",
            "redis://:[REDACTED:connection_string:1]@redis:6379/0",
        ),
        (
            "amqp://guest:gu3st-pw@rabbitmq:5672/",
            "amqp://guest:[REDACTED:connection_string:1]@rabbitmq:5672/",
        ),
        (
            "https://deploy:p@ss@word@git.example.com/repo.git",
            "https://deploy:[REDACTED:connection_string:1]@git.example.com/repo.git",
        ),
        (
            "jdbc:postgresql://app:jdbc-pw-9@db/app",
            "jdbc:postgresql://app:[REDACTED:connection_string:1]@db/app",
        ),
    ]);
}

#[test]
fn shaped_tokens_are_recognised_anywhere() {
    let jwt_line = format!("sa token {JWT} mounted");
    let jwt_expected = "sa token [REDACTED:jwt:1] mounted".to_owned();
    assert_redacts(&[
        (&jwt_line, &jwt_expected),
        (
            "key id AKIAIOSFODNN7EXAMPLE in use",
            "key id [REDACTED:aws_key:1] in use",
        ),
        (
            "creds ASIAY34FZKBOKMUTVV7A expired",
            "creds [REDACTED:aws_key:1] expired",
        ),
        (
            "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "aws_secret_access_key = [REDACTED:aws_secret_key:1]",
        ),
        (
            r#"{"SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}"#,
            r#"{"SecretAccessKey": "[REDACTED:aws_secret_key:1]"}"#,
        ),
        (
            "cloning with ghp_1234567890abcdefghijABCDEFGHIJ123456 failed",
            "cloning with [REDACTED:github_token:1] failed",
        ),
        (
            "pat github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEF",
            "pat [REDACTED:github_token:1]",
        ),
        (
            "slack xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOp posted",
            "slack [REDACTED:slack_token:1] posted",
        ),
        (
            "webhook https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
            "webhook https://hooks.slack.com/services/[REDACTED:slack_webhook:1]",
        ),
        (
            "using sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv",
            "using [REDACTED:openai_key:1]",
        ),
        (
            "using sk-ant-api03-Ab3dEf6hIj9kLm2nOp5qRs8tUv",
            "using [REDACTED:anthropic_key:1]",
        ),
        (
            "maps AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q quota",
            "maps [REDACTED:google_api_key:1] quota",
        ),
    ]);
}

#[test]
fn private_keys_are_redacted_as_whole_blocks() {
    let in_yaml = format!("tls.key: |\n{PEM}\ntls.crt: ok");
    let escaped = format!(
        r#"{{"private_key_id":"x","pem":"{}\n"}}"#,
        PEM.replace('\n', "\\n")
    );
    let escaped_expected = r#"{"private_key_id":"x","pem":"[REDACTED:private_key:1]\n"}"#;
    let truncated = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n... (truncated)";
    let kubeconfig = format!("client-key-data: {}\n", base64_standard(PEM.as_bytes()));
    assert_redacts(&[
        (
            &in_yaml,
            "tls.key: |\n[REDACTED:private_key:1]\ntls.crt: ok",
        ),
        (&escaped, escaped_expected),
        (truncated, "[REDACTED:private_key:1]\n... (truncated)"),
        (&kubeconfig, "client-key-data: [REDACTED:private_key:1]\n"),
    ]);
}

#[test]
fn vague_keys_only_vouch_for_random_looking_values() {
    assert_redacts(&[
        (
            "signing_key=Zx9Kq2Lm8Np4Rt6Vw1Yb3",
            "signing_key=[REDACTED:secret:1]",
        ),
        (
            "session_cookie: 7f3a9c2e1b5d8f4a6c0e",
            "session_cookie: [REDACTED:secret:1]",
        ),
        ("auth: enabled key: primary", "auth: enabled key: primary"),
    ]);
}

#[test]
fn the_same_secret_keeps_its_placeholder_and_different_ones_differ() {
    let r = redactor();
    assert_eq!(
        r.redact("password=aaaa1111"),
        "password=[REDACTED:password:1]"
    );
    assert_eq!(r.redact("token=bbbb2222"), "token=[REDACTED:token:2]");
    // Same value, found by another detector, in another call: same placeholder.
    assert_eq!(
        r.redact("postgres://u:aaaa1111@db/x token=bbbb2222"),
        "postgres://u:[REDACTED:password:1]@db/x token=[REDACTED:token:2]"
    );
    assert_eq!(r.redact("secret=cccc3333"), "secret=[REDACTED:secret:3]");
}

#[test]
fn known_secret_values_are_redacted_verbatim_and_in_base64() {
    let r = redactor();
    r.add_secret_values([
        "hunter2hunter2".to_owned(),
        "short".to_owned(),
        "s3cr3t-value\n".to_owned(),
    ]);
    let b64 = base64_standard(b"hunter2hunter2");
    let text = format!("user typed hunter2hunter2 in a short note; data: {b64}; file s3cr3t-value");
    assert_eq!(
        r.redact(&text),
        "user typed [REDACTED:secret_value:1] in a short note; data: [REDACTED:secret_value:2]; file [REDACTED:secret_value:3]"
    );
    let unpadded = URL_SAFE_NO_PAD.encode(b"s3cr3t-value");
    assert!(!r.redact(&unpadded).contains(&unpadded));
    assert_eq!(r.restore(&r.redact(&text)), text);
}

#[test]
fn json_strings_are_redacted_and_secret_keys_lose_any_value() {
    let r = redactor();
    let input = json!({
        "password": "hunter2hunter",
        "apiKey": 12345678,
        "password_policy": "strict",
        "enabled": true,
        "tokens": ["tok-a-123", "tok-b-456"],
        "credentials": {"username": "app", "secretKeyRef": {"name": "db", "key": "password"}},
        "logs": [["connecting to mysql://app:My5qlPa55@mysql/app"], {"token": null}],
        "cacheKey": "user-42",
    });
    let expected = json!({
        "password": "[REDACTED:password:1]",
        "apiKey": "[REDACTED:api_key:2]",
        "password_policy": "strict",
        "enabled": true,
        "tokens": ["[REDACTED:token:3]", "[REDACTED:token:4]"],
        "credentials": {"username": "app", "secretKeyRef": {"name": "db", "key": "password"}},
        "logs": [["connecting to mysql://app:[REDACTED:connection_string:5]@mysql/app"], {"token": null}],
        "cacheKey": "user-42",
    });
    // Numbering follows the map's iteration order; compare the shape, then the identities.
    let redacted = r.redact_json(&input);
    let unnumbered = |v: &Value| {
        let numbers = Regex::new(r":[0-9]+\]").unwrap();
        numbers.replace_all(&v.to_string(), ":N]").into_owned()
    };
    assert_eq!(unnumbered(&redacted), unnumbered(&expected));
    assert_ne!(redacted["tokens"][0], redacted["tokens"][1]);
    assert_eq!(r.redact_json(&redacted), redacted, "idempotent");
    let text = redacted.to_string();
    for secret in [
        "hunter2hunter",
        "12345678",
        "tok-a-123",
        "tok-b-456",
        "My5qlPa55",
    ] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
}

#[test]
fn configured_patterns_redact_their_group_or_whole_match() {
    let r = Redactor::new(&[
        r"acme-[0-9a-f]{8}".to_owned(),
        r"license=(?P<secret>\S+)".to_owned(),
        r"pin (\d{4})".to_owned(),
    ])
    .unwrap();
    assert_eq!(
        r.redact("key acme-0badc0de license=L-42-XYZ pin 1234"),
        "key [REDACTED:pattern:1] license=[REDACTED:pattern:2] pin [REDACTED:pattern:3]"
    );
}

#[test]
fn a_bad_configured_pattern_is_an_error_naming_it() {
    let err = Redactor::new(&["ok-[0-9]+".to_owned(), "broken[".to_owned()]).unwrap_err();
    assert!(matches!(&err, RedactError::BadPattern { pattern, .. } if pattern == "broken["));
    let message = err.to_string();
    assert!(message.contains("\"broken[\""), "{message}");
    assert!(message.contains("unclosed character class"), "{message}");
}

#[test]
fn restore_puts_back_what_redact_took_and_nothing_else() {
    let r = redactor();
    let text = format!("DB_PASSWORD=hunter2hunter\nAuthorization: Bearer {JWT}\n{PEM}\n");
    let redacted = r.redact(&text);
    assert!(!redacted.contains("hunter2hunter") && !redacted.contains(JWT));
    assert_eq!(r.restore(&redacted), text);
    // A model's answer quoting a placeholder gets the value back; unknown ones stay.
    assert_eq!(
        r.restore("set [REDACTED:password:1] and [REDACTED:token:99]"),
        "set hunter2hunter and [REDACTED:token:99]"
    );
    // Another incident's redactor knows nothing of these placeholders.
    assert_eq!(redactor().restore(&redacted), redacted);
}

#[test]
fn redacting_twice_changes_nothing() {
    let r = redactor();
    let text = format!(
        "password=hunter2hunter token: {JWT}\npostgres://a:b1c2d3@db/x\n{PEM}\nkey AKIAIOSFODNN7EXAMPLE"
    );
    let once = r.redact(&text);
    assert_eq!(r.redact(&once), once);
    assert_eq!(redactor().redact(&once), once);
}

#[test]
fn redactor_is_shareable_across_tasks() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Redactor>();
}

#[test]
fn planted_secrets_never_survive_and_nothing_else_changes() {
    let db_password = "Sup3rS3cret!";
    let bearer = "9f8e7d6c5b4a39281706f5e4d3c2b1a0";
    let mysql_password = "My5qlPa55";
    let slack = "xoxb-2048-4096-Zq8Xw7Vu6Ts5";
    let github = "ghs_0123456789abcdefghijABCDEFGHIJ012345";
    let redis_password = "r3d1s-P4ss";
    let mounted = "from-the-k8s-secret-42";
    let aws_secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    let blob = format!(
            "\
=== logs payments/payment-service-7d4b9c-xk2p ===
2024-05-01T12:00:00Z INFO connecting to postgres://payments:{db_password}@db.prod.svc:5432/payments
2024-05-01T12:00:01Z WARN GET /api/charge Authorization: Bearer {bearer} -> 401 (trace 3f786850e387550fdab836ed7e6dc881de23001b)
2024-05-01T12:00:02Z ERROR webhook payload {{\"channel\":\"#ops\",\"token\":\"{slack}\"}}
=== env ===
DB_HOST=db.prod.svc
DB_PASSWORD={db_password}
AWS_SECRET_ACCESS_KEY={aws_secret}
MOUNTED_CONFIG={mounted}
PASSWORD_POLICY=strict
PWD=/app
=== events ===
Warning  Failed  pod/payment-service-7d4b9c-xk2p  Failed to clone https://x-access-token:{github}@github.com/acme/payments: exit 128
Warning  BackOff  pod/payment-service-7d4b9c-xk2p  Back-off restarting failed container payments (uid 0b6c3e2a-5f1d-4c8e-9a7b-2d4e6f8a0c1e)
=== manifest ===
spec:
  containers:
  - name: payments
    image: registry.example.com/payments@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
    env:
    - name: DB_PASSWORD
      value: \"{db_password}\"
    - name: REDIS_URL
      value: redis://:{redis_password}@redis:6379/0
=== config.json ===
{{\"database\": {{\"url\": \"mysql://app:{mysql_password}@mysql:3306/app\", \"pool\": 10}}, \"redis\": {{\"password\": \"{redis_password}\"}}}}
"
        );
    let expected = "\
=== logs payments/payment-service-7d4b9c-xk2p ===
2024-05-01T12:00:00Z INFO connecting to postgres://payments:[REDACTED:connection_string:1]@db.prod.svc:5432/payments
2024-05-01T12:00:01Z WARN GET /api/charge Authorization: Bearer [REDACTED:token:2] -> 401 (trace 3f786850e387550fdab836ed7e6dc881de23001b)
2024-05-01T12:00:02Z ERROR webhook payload {\"channel\":\"#ops\",\"token\":\"[REDACTED:slack_token:3]\"}
=== env ===
DB_HOST=db.prod.svc
DB_PASSWORD=[REDACTED:connection_string:1]
AWS_SECRET_ACCESS_KEY=[REDACTED:aws_secret_key:4]
MOUNTED_CONFIG=[REDACTED:secret_value:5]
PASSWORD_POLICY=strict
PWD=/app
=== events ===
Warning  Failed  pod/payment-service-7d4b9c-xk2p  Failed to clone https://x-access-token:[REDACTED:github_token:6]@github.com/acme/payments: exit 128
Warning  BackOff  pod/payment-service-7d4b9c-xk2p  Back-off restarting failed container payments (uid 0b6c3e2a-5f1d-4c8e-9a7b-2d4e6f8a0c1e)
=== manifest ===
spec:
  containers:
  - name: payments
    image: registry.example.com/payments@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
    env:
    - name: DB_PASSWORD
      value: \"[REDACTED:connection_string:1]\"
    - name: REDIS_URL
      value: redis://:[REDACTED:connection_string:7]@redis:6379/0
=== config.json ===
{\"database\": {\"url\": \"mysql://app:[REDACTED:connection_string:8]@mysql:3306/app\", \"pool\": 10}, \"redis\": {\"password\": \"[REDACTED:connection_string:7]\"}}
";
    let r = redactor();
    r.add_secret_values([mounted.to_owned()]);
    let redacted = r.redact(&blob);
    assert_eq!(redacted, expected);
    for secret in [
        db_password,
        bearer,
        mysql_password,
        slack,
        github,
        redis_password,
        mounted,
        aws_secret,
    ] {
        assert!(!redacted.contains(secret), "{secret} leaked");
    }
    assert_eq!(r.restore(&redacted), blob);
    assert_eq!(r.redact(&redacted), redacted);
}

#[test]
fn locate_names_the_line_and_kind_of_each_secret_and_never_its_value() {
    let r = redactor();
    let text = "apiVersion: v1\nkind: ConfigMap\ndata:\n  DB_PASSWORD: hunter2-but-longer\n  LOG_LEVEL: debug\n  url: postgres://app:s3cretpass@db:5432/app\n";
    let found = r.locate(text);
    let lines: Vec<usize> = found.iter().map(|(l, _)| *l).collect();
    assert_eq!(lines, [4, 6], "{found:?}");
    assert!(found.iter().all(|(_, kind)| !kind.contains("hunter2")));
    assert!(
        r.locate("replicas: 3\nimage: ghcr.io/acme/app:1.2.3\n")
            .is_empty()
    );
}
