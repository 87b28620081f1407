//! Container logs: the Kubernetes adapter reads the `tail` lines asked for up to 256 KiB
//! (`limitBytes` to the server, and a cap on receipt whatever the server sends), bytes that are
//! not UTF-8 replaced; the simulated cluster's API honours `limitBytes` as the kubelet does.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use squad_adapters::kubernetes::{KubeCluster, KubeOptions, LOG_LIMIT_BYTES};
use squad_runtime::Clock;
use squad_runtime::ports::Cluster;

use super::{MIB_KIB, in_child, measure_here, measured_in_child, runtime};

const LOG_BYTES: usize = 100 << 20;

/// A log line with a byte that is not UTF-8.
const LINE: &[u8] = b"GET /checkout 500 upstream \xff timed out\n";

/// An API server that answers any request with a 100 MiB `text/plain` body, ignoring
/// `limitBytes`, written 1 MiB at a time from one buffer: `line` repeated (or one line of
/// `line`'s bytes without end). Returns its port and the request lines it saw.
fn streaming_server(line: &'static [u8]) -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        let chunk: Vec<u8> = line.iter().copied().cycle().take(1 << 20).collect();
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request = String::new();
            let _ = reader.read_line(&mut request);
            log.lock().unwrap().push(request.trim().to_owned());
            let mut header = String::new();
            while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
                header.clear();
            }
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {LOG_BYTES}\r\n\r\n"
            );
            if stream.write_all(head.as_bytes()).is_err() {
                continue;
            }
            for _ in 0..LOG_BYTES >> 20 {
                if stream.write_all(&chunk).is_err() {
                    break;
                }
            }
        }
    });
    (port, seen)
}

async fn adapter(port: u16, dir: &std::path::Path) -> KubeCluster {
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        format!("apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: http://127.0.0.1:{port}\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\nusers:\n- name: u\n  user: {{}}\n"),
    )
    .unwrap();
    KubeCluster::connect(
        &KubeOptions {
            kubeconfig: Some(path),
            ..KubeOptions::default()
        },
        Clock::starting_at(chrono::Utc::now()),
    )
    .await
    .unwrap()
}

#[test]
fn a_100_mib_log_is_read_up_to_its_cap_with_bounded_memory() {
    if in_child() {
        let dir = tempfile::tempdir().unwrap();
        // Lines with a byte that is not UTF-8 in each; then one line without end.
        let (lines_port, seen) = streaming_server(LINE);
        let (endless_port, _) = streaming_server(b"x");
        let rt = runtime();
        measure_here(|| {
            rt.block_on(async {
                let k = adapter(lines_port, dir.path()).await;
                let lines = k.logs("shop", "api-0", "api", false, 50).await.unwrap();
                // 256 KiB read; each byte that is not UTF-8 becomes U+FFFD (3 bytes).
                let bytes: usize = lines.iter().map(|l| l.len() + 1).sum();
                assert!(bytes <= 3 * LOG_LIMIT_BYTES, "{bytes} bytes");
                // The whole lines, the one cut at the cap, the note.
                assert_eq!(lines.len(), LOG_LIMIT_BYTES / LINE.len() + 2);
                assert!(
                    lines[0].contains("upstream \u{fffd} timed out"),
                    "{}",
                    lines[0]
                );
                let last = lines.last().unwrap();
                assert!(
                    last.contains("the log was cut here, after 262144 bytes"),
                    "{last}"
                );
                let request = seen.lock().unwrap()[0].clone();
                assert!(
                    request.contains("limitBytes=262144") && request.contains("tailLines=50"),
                    "{request}"
                );
                let k = adapter(endless_port, dir.path()).await;
                let lines = k.logs("shop", "api-0", "api", true, 50).await.unwrap();
                assert_eq!(lines.len(), 2, "one cut line and the note");
                assert_eq!(lines[0].len(), LOG_LIMIT_BYTES);
            });
        });
        return;
    }
    let growth = measured_in_child("logs::a_100_mib_log_is_read_up_to_its_cap_with_bounded_memory");
    // Two 100 MiB logs offered; a read keeps 256 KiB.
    assert!(growth < 32 * MIB_KIB, "{growth} KiB");
}

#[test]
fn the_simulated_kube_api_honours_limit_bytes() {
    use squad_sim::kube_api::{ServeOptions, SimApiServer};
    use squad_sim::{Scenario, SimCluster, seed_gitops_repo};
    runtime().block_on(async {
        let scenario = Arc::new(Scenario::embedded("oomkilled").unwrap());
        let dir = tempfile::tempdir().unwrap();
        let git = seed_gitops_repo(&scenario, &dir.path().join("gitops")).unwrap();
        let clock = Clock::starting_at(scenario.now);
        let model = Arc::new(SimCluster::new(scenario.clone(), git, clock));
        let api = SimApiServer::bind(model, 0, ServeOptions::default())
            .await
            .unwrap();
        squad_adapters::tls::install_crypto_provider();
        let http = reqwest::Client::new();
        let get = |path: String| {
            let mut r = http.get(format!("{}{path}", api.url()));
            if let Some(t) = api.token() {
                r = r.bearer_auth(t);
            }
            async move {
                let r = r.send().await.unwrap();
                (r.status().as_u16(), r.bytes().await.unwrap().to_vec())
            }
        };
        let ns = &scenario.workload.namespace;
        let (_, pods) = get(format!("/api/v1/namespaces/{ns}/pods")).await;
        let pods: serde_json::Value = serde_json::from_slice(&pods).unwrap();
        let pod = &pods["items"][0];
        let (name, container) = (
            pod["metadata"]["name"].as_str().unwrap(),
            pod["spec"]["containers"][0]["name"].as_str().unwrap(),
        );
        let log = format!("/api/v1/namespaces/{ns}/pods/{name}/log?container={container}");
        let (status, whole) = get(log.clone()).await;
        assert_eq!(status, 200);
        let (status, cut) = get(format!("{log}&limitBytes=10")).await;
        assert_eq!(status, 200);
        assert_eq!(cut, whole[..whole.len().min(10)]);
        let (status, refused) = get(format!("{log}&limitBytes=0")).await;
        assert_eq!(status, 422, "{}", String::from_utf8_lossy(&refused));
        assert!(String::from_utf8_lossy(&refused).contains("limitBytes"));
    });
}
