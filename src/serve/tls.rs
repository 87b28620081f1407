//! TLS on the listener: the certificate and key from `[server.tls]`, re-read when they change.
//!
//! The rustls server asks a [`CertStore`] for the certificate at every handshake; the store holds
//! the current pair behind a lock, so a reload swaps it for new connections while open ones keep
//! the one they started with. The files are checked every `reload_seconds` (modification time and
//! size) and at once on SIGHUP. A new pair that cannot be read, parsed, or whose key does not
//! match the certificate is refused with an error log naming the file, and the pair in use stays.
//!
//! Always rustls' `ring` provider, chosen explicitly (several providers are compiled in; see
//! `squad_adapters::tls`).

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig};
use squad_config::TlsSettings;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

/// Why a certificate, key or client CA could not be used; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("{field} {path}: cannot read it: {source}")]
    Read {
        field: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A file holds no usable certificate or key.
    #[error("{field} {path}: {message}")]
    Parse {
        field: &'static str,
        path: String,
        message: String,
    },
    /// The key is not the certificate's.
    #[error(
        "server.tls.key_file {key} does not match the certificate in server.tls.cert_file {cert}: {message}"
    )]
    Mismatch {
        cert: String,
        key: String,
        message: String,
    },
    /// rustls refused the configuration.
    #[error("server.tls: {0}")]
    Config(String),
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(field: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        field,
        path: path.display().to_string(),
        source,
    })
}

fn certificates(
    field: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(field, path)?;
    let parse = |message: String| TlsError::Parse {
        field,
        path: path.display().to_string(),
        message,
    };
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| parse(format!("not valid PEM ({e})")))?;
    if certs.is_empty() {
        return Err(parse(
            "no certificate in it (expected PEM `-----BEGIN CERTIFICATE-----` blocks)".into(),
        ));
    }
    Ok(certs)
}

/// Reads and checks a certificate chain and its key: the pair a handshake would serve.
pub(crate) fn load_pair(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let chain = certificates("server.tls.cert_file", cert)?;
    let key_pem = read("server.tls.key_file", key)?;
    let key_der = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::Parse {
        field: "server.tls.key_file",
        path: key.display().to_string(),
        message: format!("no private key in it (expected a PEM PKCS#8, PKCS#1 or SEC1 key: {e})"),
    })?;
    let signing_key = provider()
        .key_provider
        .load_private_key(key_der)
        .map_err(|e| TlsError::Parse {
            field: "server.tls.key_file",
            path: key.display().to_string(),
            message: format!("not a key squad can sign with ({e})"),
        })?;
    let pair = CertifiedKey::new(chain, signing_key);
    match pair.keys_match() {
        // A key type that cannot tell its public key is not a mismatch.
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
            Ok(pair)
        }
        Err(e) => Err(TlsError::Mismatch {
            cert: cert.display().to_string(),
            key: key.display().to_string(),
            message: e.to_string(),
        }),
    }
}

/// Loads `[server.tls]`'s files as the daemon would at start (for `squad config check`).
pub fn check_tls_files(settings: &TlsSettings) -> Result<(), TlsError> {
    Tls::new(settings).map(|_| ())
}

/// The certificate handshakes get: the last good pair read from the files.
#[derive(Debug)]
pub(crate) struct CertStore {
    current: RwLock<Arc<CertifiedKey>>,
}

impl CertStore {
    fn get(&self) -> Arc<CertifiedKey> {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    fn set(&self, pair: CertifiedKey) {
        *self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(pair);
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.get())
    }
}

/// The listener's TLS: the acceptor's config and the store its certificate comes from.
pub(crate) struct Tls {
    config: Arc<ServerConfig>,
    store: Arc<CertStore>,
    cert: PathBuf,
    key: PathBuf,
    every: Duration,
    handshake_timeout: Duration,
}

impl Tls {
    /// Loads the pair (and the client CA, if any): an error here stops the daemon's start.
    pub(crate) fn new(settings: &TlsSettings) -> Result<Tls, TlsError> {
        let (cert, key) = (
            PathBuf::from(&settings.cert_file),
            PathBuf::from(&settings.key_file),
        );
        let store = Arc::new(CertStore {
            current: RwLock::new(Arc::new(load_pair(&cert, &key)?)),
        });
        let builder = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?;
        let builder = match &settings.client_ca_file {
            None => builder.with_no_client_auth(),
            Some(ca) => builder.with_client_cert_verifier(client_verifier(Path::new(ca))?),
        };
        let mut config = builder.with_cert_resolver(store.clone());
        // squad serves HTTP/1.1 only: say so, rather than let a client hope for h2.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls {
            config: Arc::new(config),
            store,
            cert,
            key,
            every: Duration::from_secs(settings.reload_seconds),
            handshake_timeout: Duration::from_secs(settings.handshake_timeout_seconds),
        })
    }

    /// What the listener needs: the acceptor, and how long a handshake may take.
    pub(crate) fn acceptor(&self) -> (TlsAcceptor, Duration) {
        (
            TlsAcceptor::from(self.config.clone()),
            self.handshake_timeout,
        )
    }

    /// Watches the files until `shutdown`: every `reload_seconds`, and on SIGHUP.
    pub(crate) fn spawn_reloader(&self, mut shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
        let reloader = Reloader {
            store: self.store.clone(),
            cert: self.cert.clone(),
            key: self.key.clone(),
            seen: stamp(&self.cert, &self.key),
        };
        let every = self.every;
        // Registered now, before the daemon says it listens: a SIGHUP from then on reloads
        // (without a handler, SIGHUP would end the process).
        let mut hangup = hangups();
        tokio::spawn(async move {
            let mut reloader = reloader;
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = super::listener::stopped(&mut shutdown) => return,
                    _ = tick.tick() => reloader.check(false),
                    Some(()) = next_hangup(&mut hangup) => {
                        tracing::info!("server.tls: SIGHUP, reading the certificate files");
                        reloader.check(true);
                    }
                }
            }
        })
    }
}

fn client_verifier(
    ca: &Path,
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in certificates("server.tls.client_ca_file", ca)? {
        roots.add(cert).map_err(|e| TlsError::Parse {
            field: "server.tls.client_ca_file",
            path: ca.display().to_string(),
            message: format!("not a usable CA certificate: {e}"),
        })?;
    }
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
        .build()
        .map_err(|e| TlsError::Parse {
            field: "server.tls.client_ca_file",
            path: ca.display().to_string(),
            message: e.to_string(),
        })
}

/// What the files looked like when last read: modification time and size of each.
type Stamp = Option<[(SystemTime, u64); 2]>;

fn stamp(cert: &Path, key: &Path) -> Stamp {
    let one = |p: &Path| {
        std::fs::metadata(p)
            .ok()
            .and_then(|m| Some((m.modified().ok()?, m.len())))
    };
    Some([one(cert)?, one(key)?])
}

struct Reloader {
    store: Arc<CertStore>,
    cert: PathBuf,
    key: PathBuf,
    seen: Stamp,
}

impl Reloader {
    /// Reads the pair again if the files changed (or `force`); a bad pair is logged once per
    /// change and the one in use stays.
    fn check(&mut self, force: bool) {
        let now = stamp(&self.cert, &self.key);
        if !force && now == self.seen {
            return;
        }
        self.seen = now;
        match load_pair(&self.cert, &self.key) {
            Ok(pair) => {
                self.store.set(pair);
                metrics::counter!("squad_tls_reloads_total", "outcome" => "ok").increment(1);
                tracing::info!(
                    cert = %self.cert.display(),
                    "server.tls: new connections get the reloaded certificate"
                );
            }
            Err(e) => {
                metrics::counter!("squad_tls_reloads_total", "outcome" => "error").increment(1);
                tracing::error!("{e}; the certificate in use stays");
            }
        }
    }
}

#[cfg(unix)]
type Hangups = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangups = Option<()>;

#[cfg(unix)]
fn hangups() -> Hangups {
    use tokio::signal::unix::{SignalKind, signal};
    signal(SignalKind::hangup())
        .map_err(|e| tracing::warn!("server.tls: no SIGHUP reload ({e}); polling only"))
        .ok()
}

#[cfg(not(unix))]
fn hangups() -> Hangups {
    None
}

/// The next SIGHUP; pending forever without a handler.
async fn next_hangup(h: &mut Hangups) -> Option<()> {
    #[cfg(unix)]
    if let Some(s) = h {
        return s.recv().await;
    }
    let _ = h;
    std::future::pending().await
}
