//! `squad serve`'s edge as a sender meets it: HTTPS with a test CA, certificate reload (polled
//! and on SIGHUP) with new connections on the new certificate and open ones on the old, a bad
//! replacement refused, hashed and plain tokens, per-token and per-peer rate limits, the 16 KiB
//! head limit, mutual TLS, and `squad config check`'s warnings.
//!
//! The daemon runs as the built binary on a loopback port; the client is reqwest on rustls (ring),
//! trusting only a CA that openssl makes for the test.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tempfile::TempDir;

const TOKEN: &str = "edge-test-token-0123456789";
const OTHER: &str = "edge-other-token-0123456789";
const FIXTURE: &str = "tests/fixtures/alertmanager/webhook-v4-oomkilled-0.25.0.json";

// ---------------------------------------------------------------------------------------------
// Certificates, made with the openssl CLI.

struct Pki {
    dir: TempDir,
}

/// A certificate and key on disk, and the certificate's DER (what a client sees).
struct Leaf {
    cert: PathBuf,
    key: PathBuf,
    der: Vec<u8>,
}

/// Runs `openssl` in `dir` with `args` (split on whitespace).
fn openssl(dir: &Path, args: &str) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args.split_whitespace())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

const EC: &str = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        openssl(
            dir.path(),
            &format!("req -x509 {EC} -keyout ca.key -out ca.pem -subj /CN=squad-test-CA -days 2"),
        );
        Pki { dir }
    }

    fn ca(&self) -> reqwest::Certificate {
        reqwest::Certificate::from_pem(&std::fs::read(self.dir.path().join("ca.pem")).unwrap())
            .unwrap()
    }

    /// A certificate for 127.0.0.1 signed by the CA; `usage` is `serverAuth` or `clientAuth`.
    fn leaf(&self, name: &str, serial: u32, usage: &str) -> Leaf {
        let d = self.dir.path();
        std::fs::write(
            d.join(format!("{name}.ext")),
            format!(
                "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=critical,CA:FALSE\n\
                 keyUsage=critical,digitalSignature\nextendedKeyUsage={usage}\n"
            ),
        )
        .unwrap();
        openssl(
            d,
            &format!("req {EC} -keyout {name}.key -out {name}.csr -subj /CN={name}"),
        );
        openssl(
            d,
            &format!(
                "x509 -req -in {name}.csr -CA ca.pem -CAkey ca.key -set_serial {serial} -days 2 \
                 -extfile {name}.ext -out {name}.pem"
            ),
        );
        let cert = d.join(format!("{name}.pem"));
        let der = CertificateDer::from_pem_file(&cert)
            .unwrap()
            .as_ref()
            .to_vec();
        Leaf {
            cert,
            key: d.join(format!("{name}.key")),
            der,
        }
    }
}

/// Replaces `to` with `from`'s content the way a Secret volume or cert-manager does: a new file
/// renamed over the old one.
fn replace(from: &Path, to: &Path) {
    let tmp = to.with_extension("new");
    std::fs::copy(from, &tmp).unwrap();
    std::fs::rename(&tmp, to).unwrap();
}

// ---------------------------------------------------------------------------------------------
// The daemon.

struct Serve {
    child: Option<Child>,
    url: String,
    log: PathBuf,
    _dir: TempDir,
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Serve {
    fn pid(&self) -> String {
        self.child.as_ref().unwrap().id().to_string()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// A squad.toml: `server` keys go under `[server]`, `tables` after `[server.auth]`'s `auth`.
fn config(dir: &Path, server: &str, auth: &str, tables: &str) -> PathBuf {
    let path = dir.join("squad.toml");
    std::fs::write(
        &path,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nrequest_timeout_seconds = 30\n{server}\n\
             [server.auth]\n{auth}\n{tables}\n[backend]\ndata_dir = \"{}\"\n",
            dir.join("data").display()
        ),
    )
    .unwrap();
    path
}

fn serve(server: &str, auth: &str, tables: &str) -> Serve {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), server, auth, tables);
    let log = dir.path().join("squad.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_squad"))
        .args(["serve", "--config"])
        .arg(&config)
        .env_remove("SQUAD_SERVER_TOKENS")
        .env_remove("SQUAD_PAGERDUTY_SECRETS")
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while out.read_line(&mut line).unwrap() > 0 {
        if let Some(url) = line.trim().strip_prefix("squad serve: listening on ") {
            let url = url.to_owned();
            std::thread::spawn(move || for _ in out.lines() {});
            return Serve {
                child: Some(child),
                url,
                log,
                _dir: dir,
            };
        }
        line.clear();
    }
    let status = child.wait().unwrap();
    panic!(
        "squad serve did not start ({status}): {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
}

fn tls_table(leaf: &Leaf, extra: &str) -> String {
    format!(
        "[server.tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n{extra}\n",
        leaf.cert.display(),
        leaf.key.display()
    )
}

fn tokens(list: &[&str]) -> String {
    let quoted: Vec<String> = list.iter().map(|t| format!("\"{t}\"")).collect();
    format!("tokens = [{}]", quoted.join(", "))
}

// ---------------------------------------------------------------------------------------------
// Clients.

fn builder() -> reqwest::ClientBuilder {
    squad_adapters::tls::install_crypto_provider();
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
}

/// A client that trusts only the test CA and reports the server's certificate.
fn https(pki: &Pki) -> reqwest::Client {
    builder()
        .tls_certs_only([pki.ca()])
        .tls_info(true)
        .build()
        .unwrap()
}

fn plain() -> reqwest::Client {
    builder().build().unwrap()
}

/// `GET /healthz`: the status and the certificate the connection was made with.
async fn served_certificate(client: &reqwest::Client, url: &str) -> (u16, Vec<u8>) {
    let resp = client.get(format!("{url}/healthz")).send().await.unwrap();
    let der = resp
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|i| i.peer_certificate())
        .unwrap()
        .to_vec();
    (resp.status().as_u16(), der)
}

/// `GET /v1/incidents` with `token`: (status, Retry-After, body).
async fn incidents(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
) -> (u16, Option<String>, String) {
    let mut req = client.get(format!("{url}/v1/incidents"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let retry = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .map(|v| v.to_str().unwrap().to_owned());
    (status, retry, resp.text().await.unwrap())
}

/// Polls `check` every 100 ms until it holds (a liveness bound of 30 s, not a speed claim).
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..300 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("not within 30 s: {what}");
}

/// What a fresh connection is served.
async fn fresh_certificate(pki: &Pki, url: &str) -> Vec<u8> {
    served_certificate(&https(pki), url).await.1
}

// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_over_https_is_accepted_and_plain_http_and_stalled_handshakes_are_not() {
    let pki = Pki::new();
    let a = pki.leaf("squad-a", 0x1001, "serverAuth");
    let mut s = serve(
        "",
        &tokens(&[TOKEN]),
        &tls_table(&a, "handshake_timeout_seconds = 1"),
    );
    assert!(s.url.starts_with("https://127.0.0.1:"), "{}", s.url);

    let resp = https(&pki)
        .post(format!("{}/v1/alerts/alertmanager", s.url))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body(std::fs::read(FIXTURE).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202, "{:?}", resp.text().await);

    // Plain HTTP to the TLS port: the handshake fails and the connection is closed.
    let http_url = s.url.replacen("https://", "http://", 1);
    let err = plain()
        .get(format!("{http_url}/healthz"))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_request() || err.is_connect(), "{err:?}");
    // A client that never starts its handshake is disconnected, not kept forever.
    let addr = s.url.trim_start_matches("https://").to_owned();
    let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::io::AsyncReadExt::read(&mut tcp, &mut buf),
    )
    .await
    .expect("the server still holds a connection that never sent a ClientHello");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");

    // SIGTERM with TLS on: a clean exit.
    let mut child = s.child.take().unwrap();
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "{status}: {}", s.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_certificate_reaches_new_connections_while_open_ones_keep_theirs() {
    let pki = Pki::new();
    let a = pki.leaf("squad-a", 0x1001, "serverAuth");
    let b = pki.leaf("squad-b", 0x2002, "serverAuth");
    let c = pki.leaf("squad-c", 0x3003, "serverAuth");
    // The daemon reads its own copies, as it would a mounted Secret.
    let live = Leaf {
        cert: pki.dir.path().join("live.pem"),
        key: pki.dir.path().join("live.key"),
        der: Vec::new(),
    };
    std::fs::copy(&a.cert, &live.cert).unwrap();
    std::fs::copy(&a.key, &live.key).unwrap();
    let s = serve(
        "",
        &tokens(&[TOKEN]),
        &tls_table(&live, "reload_seconds = 1"),
    );

    let open = https(&pki);
    assert_eq!(
        served_certificate(&open, &s.url).await,
        (200, a.der.clone())
    );

    replace(&b.key, &live.key);
    replace(&b.cert, &live.cert);
    eventually("a new connection gets certificate B", || async {
        fresh_certificate(&pki, &s.url).await == b.der
    })
    .await;
    // The connection opened before the reload still works, on the certificate it started with.
    assert_eq!(
        served_certificate(&open, &s.url).await,
        (200, a.der.clone())
    );

    // A key that does not match the certificate: refused, logged naming the file, B stays.
    replace(&c.key, &live.key);
    eventually("the mismatched key is logged", || async {
        let log = s.log();
        log.contains("does not match") && log.contains(&live.key.display().to_string())
    })
    .await;
    assert_eq!(fresh_certificate(&pki, &s.url).await, b.der);

    // A certificate file that is not one: the same.
    std::fs::write(&live.cert, "not a certificate\n").unwrap();
    eventually("the unreadable certificate is logged", || async {
        let log = s.log();
        log.contains("no certificate in it") && log.contains(&live.cert.display().to_string())
    })
    .await;
    assert_eq!(fresh_certificate(&pki, &s.url).await, b.der);

    // Then a good pair again: served.
    replace(&c.cert, &live.cert);
    eventually("a new connection gets certificate C", || async {
        fresh_certificate(&pki, &s.url).await == c.der
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_certificate_without_waiting_for_the_poll() {
    let pki = Pki::new();
    let a = pki.leaf("squad-a", 0x1001, "serverAuth");
    let b = pki.leaf("squad-b", 0x2002, "serverAuth");
    let live = Leaf {
        cert: pki.dir.path().join("live.pem"),
        key: pki.dir.path().join("live.key"),
        der: Vec::new(),
    };
    std::fs::copy(&a.cert, &live.cert).unwrap();
    std::fs::copy(&a.key, &live.key).unwrap();
    let s = serve(
        "",
        &tokens(&[TOKEN]),
        &tls_table(&live, "reload_seconds = 3600"),
    );
    assert_eq!(fresh_certificate(&pki, &s.url).await, a.der);
    replace(&b.key, &live.key);
    replace(&b.cert, &live.cert);
    let hup = Command::new("kill")
        .args(["-HUP", &s.pid()])
        .status()
        .unwrap();
    assert!(hup.success());
    eventually(
        "a new connection gets certificate B after SIGHUP",
        || async { fresh_certificate(&pki, &s.url).await == b.der },
    )
    .await;
    assert_eq!(incidents(&https(&pki), &s.url, Some(TOKEN)).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_client_ca_only_clients_holding_its_certificates_get_in() {
    let pki = Pki::new();
    let server = pki.leaf("squad-a", 0x1001, "serverAuth");
    let client = pki.leaf("alertmanager", 0x4004, "clientAuth");
    let ca = pki.dir.path().join("ca.pem");
    let s = serve(
        "",
        &tokens(&[TOKEN]),
        &tls_table(&server, &format!("client_ca_file = \"{}\"", ca.display())),
    );
    let mut pem = std::fs::read(&client.cert).unwrap();
    pem.extend(std::fs::read(&client.key).unwrap());
    let with_cert = builder()
        .tls_certs_only([pki.ca()])
        .identity(reqwest::Identity::from_pem(&pem).unwrap())
        .build()
        .unwrap();
    assert_eq!(incidents(&with_cert, &s.url, Some(TOKEN)).await.0, 200);
    let without = https(&pki).get(format!("{}/healthz", s.url)).send().await;
    assert!(without.is_err(), "{without:?}");
}

/// `squad token hash` with `stdin`: (success, stdout, stderr).
fn token_hash(stdin: &str, args: &[&str]) -> (bool, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_squad"))
        .args(["token", "hash"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hashed_and_plain_tokens_get_in_and_wrong_ones_of_any_length_do_not() {
    let hashed = "edge-hashed-token-from-the-cli-42";
    let (ok, hash, err) = token_hash(&format!("{hashed}\n"), &[]);
    assert!(ok, "{err}");
    assert!(
        hash.starts_with("sha256:") && hash.len() == 7 + 64,
        "{hash}"
    );
    // The same with CRLF or no newline at all.
    assert_eq!(token_hash(&format!("{hashed}\r\n"), &[]).1, hash);
    assert_eq!(token_hash(hashed, &[]).1, hash);
    // Not from argv, not two lines, not a short one.
    assert!(!token_hash("", &[hashed]).0);
    let (ok, _, err) = token_hash("first-token-0123456789\nsecond-token-0123456789\n", &[]);
    assert!(!ok && err.contains("one token"), "{err}");
    let (ok, _, err) = token_hash("short\n", &[]);
    assert!(!ok && err.contains("at least 16 characters"), "{err}");

    let s = serve(
        "",
        &format!("{}\ntoken_hashes = [\"{hash}\"]", tokens(&[TOKEN])),
        "",
    );
    let c = plain();
    assert_eq!(incidents(&c, &s.url, Some(hashed)).await.0, 200);
    assert_eq!(incidents(&c, &s.url, Some(TOKEN)).await.0, 200);
    let same_length_wrong: String = TOKEN.chars().rev().collect::<String>();
    for (token, want) in [
        (Some(same_length_wrong.as_str()), 403),
        (Some(&TOKEN[..TOKEN.len() - 1]), 403),
        (Some(&format!("{TOKEN}0")[..]), 403),
        (Some(&hash[..]), 403),
        // "Bearer " alone: the value's trailing space is not part of it, so no token at all.
        (Some(""), 401),
        (None, 401),
    ] {
        let (status, _, body) = incidents(&c, &s.url, token).await;
        assert_eq!(status, want, "{token:?}: {body}");
    }
    let basic = c
        .get(format!("{}/v1/incidents", s.url))
        .header("authorization", format!("Basic {TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status().as_u16(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_its_burst_a_token_gets_429_and_other_tokens_and_peers_are_not_starved() {
    let (per_second, burst) = (1u64, 5u64);
    let s = serve(
        "",
        &tokens(&[TOKEN, OTHER]),
        &format!("[server.rate_limit]\nper_second = {per_second}\nburst = {burst}\n"),
    );
    let c = plain();
    let started = tokio::time::Instant::now();
    let mut granted = 0u64;
    let (status, retry, body) = loop {
        let (status, retry, body) = incidents(&c, &s.url, Some(TOKEN)).await;
        if status != 200 {
            break (status, retry, body);
        }
        granted += 1;
        assert!(granted < burst + 100, "never limited");
    };
    // The burst, plus what refilled while the requests were sent.
    let refilled = started.elapsed().as_secs() * per_second + 1;
    assert!(
        (burst..=burst + refilled).contains(&granted),
        "{granted} granted"
    );
    assert_eq!(status, 429, "{body}");
    let retry: u64 = retry.expect("Retry-After").parse().unwrap();
    assert!(retry >= 1, "{retry}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["error"]["limit"], "token", "{body}");
    assert!(
        json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("[server.rate_limit]"),
        "{body}"
    );
    // Alertmanager's webhook sender retries a 5xx and drops a 429: its endpoint answers 503
    // with the same Retry-After and body, so the alerts come again.
    let am = c
        .post(format!("{}/v1/alerts/alertmanager", s.url))
        .bearer_auth(TOKEN)
        .body(std::fs::read(FIXTURE).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(am.status().as_u16(), 503);
    assert!(am.headers().contains_key("retry-after"));
    let json: serde_json::Value = am.json().await.unwrap();
    assert_eq!(json["error"]["limit"], "token", "{json}");
    assert_eq!(json["error"]["status"], 503, "{json}");
    // The other token has its own bucket.
    assert_eq!(incidents(&c, &s.url, Some(OTHER)).await.0, 200);

    // Wrong tokens from one peer: 403 until the peer's allowance is used, then 429 for every
    // request from it, even with a right token (or guessing would go on, told apart by answers).
    let mut refused = 0;
    let body = loop {
        let (status, _, body) = incidents(&c, &s.url, Some("wrong-token-0123456789")).await;
        if status == 429 {
            break body;
        }
        assert_eq!(status, 403, "{body}");
        refused += 1;
        assert!(refused < burst + 100, "never limited");
    };
    assert!(refused >= burst, "{refused}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["error"]["limit"], "peer", "{body}");
    let (status, retry, _) = incidents(&c, &s.url, Some(OTHER)).await;
    assert_eq!(status, 429);
    assert!(retry.is_some());

    let metrics = c
        .get(format!("{}/metrics", s.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for limit in ["token", "peer"] {
        assert!(
            metrics.contains(&format!(
                "squad_requests_rate_limited_total{{limit=\"{limit}\"}}"
            )),
            "{metrics}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_head_over_16_kib_gets_431_over_http_and_https() {
    let pki = Pki::new();
    let a = pki.leaf("squad-a", 0x1001, "serverAuth");
    let tls = serve("", &tokens(&[TOKEN]), &tls_table(&a, ""));
    let http = serve("", &tokens(&[TOKEN]), "");
    for (client, url) in [(https(&pki), &tls.url), (plain(), &http.url)] {
        for (kib, want) in [(15, 200), (17, 431)] {
            let resp = client
                .get(format!("{url}/healthz"))
                .header("x-padding", "a".repeat(kib * 1024))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status().as_u16(), want, "{url}, {kib} KiB header");
        }
        // The daemon still serves.
        assert_eq!(incidents(&client, url, Some(TOKEN)).await.0, 200);
    }
}

fn config_check(path: &Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_squad"))
        .args(["config", "check", "--config"])
        .arg(path)
        .env_remove("SQUAD_SERVER_TOKENS")
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn config_check_warns_on_a_listener_off_loopback_without_tls_and_on_plain_tokens() {
    let pki = Pki::new();
    let a = pki.leaf("squad-a", 0x1001, "serverAuth");
    let b = pki.leaf("squad-b", 0x2002, "serverAuth");
    let dir = tempfile::tempdir().unwrap();
    let hashed = format!("token_hashes = [\"sha256:{}\"]", "0f".repeat(32));
    let write = |listen: &str, auth: &str, tables: &str| {
        let p = config(dir.path(), "", auth, tables);
        let text = std::fs::read_to_string(&p)
            .unwrap()
            .replace("127.0.0.1:0", listen);
        std::fs::write(&p, text).unwrap();
        p
    };

    let (ok, out) = config_check(&write("0.0.0.0:8080", &hashed, ""));
    assert!(ok, "{out}");
    assert!(
        out.contains(
            "warning: server.listen 0.0.0.0:8080 is not a loopback address and [server.tls] is not set"
        ),
        "{out}"
    );
    assert!(!out.contains("warning: server.auth.tokens"), "{out}");

    let (ok, out) = config_check(&write("127.0.0.1:8080", &hashed, ""));
    assert!(ok && !out.contains("warning:"), "{out}");

    let (ok, out) = config_check(&write("0.0.0.0:8443", &hashed, &tls_table(&a, "")));
    assert!(ok && !out.contains("warning:"), "{out}");
    assert!(out.contains(&a.cert.display().to_string()), "{out}");

    let (ok, out) = config_check(&write("127.0.0.1:8080", &tokens(&[TOKEN]), ""));
    assert!(ok, "{out}");
    assert!(
        out.contains("warning: server.auth.tokens: 1 plain token(s)")
            && out.contains("squad token hash")
            && out.contains("token_hashes"),
        "{out}"
    );

    // A key that is not the certificate's: an error naming both files.
    let mismatched = Leaf {
        cert: a.cert.clone(),
        key: b.key.clone(),
        der: Vec::new(),
    };
    let (ok, out) = config_check(&write("0.0.0.0:8443", &hashed, &tls_table(&mismatched, "")));
    assert!(!ok, "{out}");
    assert!(
        out.contains("server.tls.key_file") && out.contains(&b.key.display().to_string()),
        "{out}"
    );
}
