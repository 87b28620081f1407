//! A fake kubelet: the one endpoint a kube-apiserver calls for `kubectl logs`, served from a
//! simulated cluster's container logs.
//!
//! The apiserver fetches logs from `https://{Node InternalIP}:{kubeletEndpoint port}
//! /containerLogs/{namespace}/{pod}/{container}?previous=true&tailLines=N`, always over TLS and
//! without verifying the certificate, and passes the kubelet's answer on: a 200's body as the
//! log, a 400's body as a `BadRequest` message, a 404's as `NotFound`. The errors here say what a
//! real kubelet says in the same cases (`previous terminated container "c" in pod "p" not
//! found`, ...), so a client reads the same through a real apiserver as from the simulated one.
//! Dropping it stops serving.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result};
use axum::Router;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use squad_runtime::ports::PortError;
use squad_sim::SimCluster;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A running fake kubelet on 127.0.0.1.
pub struct FakeKubelet {
    port: u16,
    served: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

struct Shared {
    sim: Arc<SimCluster>,
    served: Arc<AtomicU64>,
}

impl FakeKubelet {
    /// Serves `sim`'s container logs over HTTPS on a free port of 127.0.0.1, with the PEM
    /// certificate and key at `cert` and `key` (the harness's `kubelet_tls()` pair).
    pub async fn start(sim: Arc<SimCluster>, cert: &Path, key: &Path) -> Result<FakeKubelet> {
        let certs = CertificateDer::pem_file_iter(cert)
            .with_context(|| format!("reading {}", cert.display()))?
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("parsing {}", cert.display()))?;
        let key = PrivateKeyDer::from_pem_file(key)
            .with_context(|| format!("reading {}", key.display()))?;
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("choosing TLS versions")?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .context("loading the kubelet's certificate")?;
        let acceptor = TlsAcceptor::from(Arc::new(config));

        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the fake kubelet to 127.0.0.1:0")?;
        let port = listener.local_addr().context("reading its port")?.port();
        let served = Arc::new(AtomicU64::new(0));
        let app = Router::new()
            .route(
                "/containerLogs/{namespace}/{pod}/{container}",
                get(container_logs),
            )
            .with_state(Arc::new(Shared {
                sim,
                served: served.clone(),
            }));
        let task = tokio::spawn(async move {
            // Connections live in the set, so stopping the accept loop stops them too.
            let mut connections = JoinSet::new();
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    // Out of file descriptors, say: try again shortly rather than spin.
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                };
                while connections.try_join_next().is_some() {}
                let acceptor = acceptor.clone();
                let service = TowerToHyperService::new(app.clone());
                connections.spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        Ok(FakeKubelet { port, served, task })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Log requests answered so far (errors included).
    pub fn served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }
}

impl Drop for FakeKubelet {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn text(code: StatusCode, body: String) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

async fn container_logs(
    State(shared): State<Arc<Shared>>,
    UrlPath((namespace, pod, container)): UrlPath<(String, String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    shared.served.fetch_add(1, Ordering::Relaxed);
    let previous = q.get("previous").is_some_and(|v| v == "true");
    let tail = match q.get("tailLines") {
        Some(t) => match t.parse::<usize>() {
            Ok(n) => n,
            Err(_) => {
                return text(
                    StatusCode::BAD_REQUEST,
                    format!("Unable to decode query: tailLines: invalid value {t:?}"),
                );
            }
        },
        None => usize::MAX,
    };
    // What the kubelet checks before it reads a log: the pod, then the container in its spec.
    let known = shared
        .sim
        .world()
        .ok()
        .and_then(|w| {
            w.of_kind("Pod", Some(&namespace))
                .find(|p| p["metadata"]["name"] == pod.as_str())
                .cloned()
        })
        .map(|p| {
            p["spec"]["containers"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["name"] == container.as_str())
        });
    match known {
        None => {
            return text(
                StatusCode::NOT_FOUND,
                format!("pod \"{pod}\" does not exist\n"),
            );
        }
        Some(false) => {
            return text(
                StatusCode::NOT_FOUND,
                format!("container \"{container}\" not found in pod \"{pod}\"\n"),
            );
        }
        Some(true) => {}
    }
    match shared
        .sim
        .logs(&namespace, &pod, &container, previous, tail)
    {
        Ok(lines) => {
            let mut body = lines.join("\n");
            if !body.is_empty() {
                body.push('\n');
            }
            text(StatusCode::OK, body)
        }
        // The kubelet answers 400 with this text; the apiserver turns it into a BadRequest.
        Err(PortError::NotFound { .. }) if previous => text(
            StatusCode::BAD_REQUEST,
            format!("previous terminated container \"{container}\" in pod \"{pod}\" not found"),
        ),
        Err(PortError::NotFound { what }) => {
            text(StatusCode::NOT_FOUND, format!("{what} not found"))
        }
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
