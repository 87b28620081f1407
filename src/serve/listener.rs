//! The accept loop: plain TCP or TLS, HTTP/1.1 through hyper with the edge's limits.
//!
//! Each connection runs in its own task, so a slow client never holds the loop: a TLS handshake
//! has `handshake_timeout_seconds`, a request head `request_timeout_seconds` (hyper's header read
//! timeout; the router's timeout covers the rest), and a head over [`MAX_HEADER_BYTES`] is
//! answered 431 by hyper. Each request carries its peer's address as
//! `ConnectInfo<SocketAddr>`. On shutdown the loop stops accepting, idle keep-alive connections
//! close, and in-flight requests finish.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tower::Service as _;

/// A request whose line and headers together exceed this is answered 431.
pub(crate) const MAX_HEADER_BYTES: usize = 16 * 1024;

/// How connections are served.
#[derive(Clone)]
pub(crate) struct Edge {
    pub(crate) tls: Option<(TlsAcceptor, Duration)>,
    pub(crate) header_timeout: Duration,
}

/// Serves `app` on `listener` until `shutdown` turns true, then waits for open connections.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    edge: Edge,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(edge.header_timeout)
        .max_header_size(MAX_HEADER_BYTES)
        .keep_alive(true);
    let http = Arc::new(http);
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = stopped(&mut shutdown) => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    let _ = tcp.set_nodelay(true);
                    connections.spawn(connection(
                        tcp,
                        peer,
                        app.clone(),
                        edge.clone(),
                        http.clone(),
                        shutdown.clone(),
                    ));
                }
                Err(e) => {
                    // Out of file descriptors, say: try again shortly rather than spin.
                    tracing::warn!("squad serve: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
    Ok(())
}

async fn connection(
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    app: Router,
    edge: Edge,
    http: Arc<http1::Builder>,
    mut shutdown: watch::Receiver<bool>,
) {
    match &edge.tls {
        None => http_on(tcp, peer, app, &http, shutdown).await,
        Some((acceptor, timeout)) => {
            let handshake = tokio::time::timeout(*timeout, acceptor.accept(tcp));
            let tls = tokio::select! {
                r = handshake => r,
                _ = stopped(&mut shutdown) => return,
            };
            match tls {
                Ok(Ok(stream)) => http_on(stream, peer, app, &http, shutdown).await,
                Ok(Err(e)) => {
                    metrics::counter!("squad_tls_handshake_failures_total", "reason" => "error")
                        .increment(1);
                    tracing::debug!(%peer, "TLS handshake failed: {e}");
                }
                Err(_) => {
                    metrics::counter!("squad_tls_handshake_failures_total", "reason" => "timeout")
                        .increment(1);
                    tracing::debug!(%peer, "TLS handshake timed out");
                }
            }
        }
    }
}

async fn http_on<I>(
    io: I,
    peer: SocketAddr,
    app: Router,
    http: &http1::Builder,
    mut shutdown: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        // A router is always ready: calling it directly is what axum's own server does.
        app.clone().call(req)
    });
    let conn = http.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = stopped(&mut shutdown) => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// Resolves once the shutdown signal is (or was) sent, or its sender is gone.
pub(crate) async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}
