//! A real kube-apiserver (1.20.2) backed by a real etcd, on loopback ports, for integration tests.
//!
//! There is no scheduler, controller-manager or kubelet ([`crate::control_plane`] adds the first
//! two): tests create Pods with `spec.nodeName` set, drive their status through the `status`
//! subresource, and create Events themselves. For `kubectl logs` the apiserver calls
//! `https://{Node InternalIP}:{status.daemonEndpoints.kubeletEndpoint.Port}/containerLogs/{ns}/
//! {pod}/{container}?previous=true&tailLines=N…`; it always uses TLS but verifies nothing, so a
//! test serves that path itself with the self-signed pair from [`RealApiserver::kubelet_tls`].
//!
//! Start-up is async (it polls with `tokio::time`; run it on a real clock, not a paused one) and
//! takes a few seconds; the binary comes from `SQUAD_KUBE_APISERVER` (which `scripts/tools` sets)
//! or the cache `scripts/kube-apiserver-build` fills. Dropping the value stops the apiserver, then
//! etcd, and removes the state.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tempfile::TempDir;

use crate::process::free_ports;
use tokio::time::{Instant, sleep};

/// Where etcd comes from (Debian's `etcd-server`, installed by `scripts/kube-apiserver-build`).
const ETCD: &str = "/usr/bin/etcd";

const ADMIN_TOKEN: &str = "squad-admin-token";
const VIEWER_TOKEN: &str = "squad-viewer-token";
const ETCD_READY_WITHIN: Duration = Duration::from_secs(30);
const APISERVER_READY_WITHIN: Duration = Duration::from_secs(90);
const STOP_WITHIN: Duration = Duration::from_secs(10);
const LOG_TAIL_LINES: usize = 30;

/// How to start the apiserver.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// `--authorization-mode=RBAC` instead of `AlwaysAllow`, with a second user, `viewer`, whose
    /// only group (`squad:viewers`) has no bindings: it can discover APIs but read nothing.
    pub rbac: bool,
}

/// A running etcd + kube-apiserver pair and the temporary directory holding their state.
pub struct RealApiserver {
    // Drop stops these before `dir` is removed (fields drop after `Drop::drop` runs).
    apiserver: Option<Child>,
    etcd: Option<Child>,
    port: u16,
    kubeconfig: PathBuf,
    viewer_kubeconfig: Option<PathBuf>,
    dir: TempDir,
}

/// The apiserver binary, if it is already built (or named by `SQUAD_KUBE_APISERVER`) and etcd is
/// installed; [`start_or_skip`] skips without one.
pub(crate) fn available() -> Option<PathBuf> {
    if !Path::new(ETCD).is_file() {
        return None;
    }
    component("SQUAD_KUBE_APISERVER", "kube-apiserver")
}

/// A control-plane binary: the path in the environment variable `var`, else `name` in the cache
/// `scripts/kube-apiserver-build` fills; `None` unless it is a file.
pub(crate) fn component(var: &str, name: &str) -> Option<PathBuf> {
    let bin = match std::env::var_os(var) {
        Some(p) => PathBuf::from(p),
        None => cached_binary(name)?,
    };
    bin.is_file().then_some(bin)
}

/// Under `CI=true` a missing component is an error; elsewhere the test is skipped with `why`.
pub(crate) fn skip_unless_ci(why: &str) -> Result<()> {
    if std::env::var("CI").as_deref() == Ok("true") {
        bail!("{why}; CI=true, so this is a failure, not a skip");
    }
    eprintln!("SKIPPED {why}");
    Ok(())
}

/// Starts an apiserver for the named test, or explains why it is skipped and returns `None` when
/// none is built. Under `CI=true` a missing binary is an error instead of a skip.
pub async fn start_or_skip(test: &str, options: Options) -> Result<Option<RealApiserver>> {
    let Some(bin) = available() else {
        let why = format!(
            "{test}: no kube-apiserver (set SQUAD_KUBE_APISERVER or run scripts/kube-apiserver-build) \
             or no etcd at {ETCD}"
        );
        skip_unless_ci(&why)?;
        return Ok(None);
    };
    RealApiserver::start(&bin, options).await.map(Some)
}

impl RealApiserver {
    /// Starts etcd and the kube-apiserver at `bin`, waits for `/readyz` and the `default`
    /// namespace, and writes the kubeconfig(s).
    pub(crate) async fn start(bin: &Path, options: Options) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("squad-apiserver-")
            .tempdir()
            .context("creating the apiserver's temporary directory")?;
        let root = dir.path().to_path_buf();
        let [etcd_port, peer_port, port] = free_ports()?;

        write_service_account_keys(&root)?;
        write_kubelet_serving_pair(&root)?;
        let mut tokens = format!("{ADMIN_TOKEN},admin,admin,system:masters\n");
        if options.rbac {
            tokens.push_str(&format!("{VIEWER_TOKEN},viewer,viewer,squad:viewers\n"));
        }
        write(&root.join("tokens.csv"), &tokens)?;
        fs::create_dir_all(root.join("certs")).context("creating the cert dir")?;

        let mut me = RealApiserver {
            apiserver: None,
            etcd: None,
            port,
            kubeconfig: root.join("kubeconfig"),
            viewer_kubeconfig: None,
            dir,
        };

        let etcd_url = format!("http://127.0.0.1:{etcd_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        let mut etcd = Command::new(ETCD);
        etcd.args([
            "--name=squad",
            &format!("--data-dir={}", root.join("etcd").display()),
            &format!("--listen-client-urls={etcd_url}"),
            &format!("--advertise-client-urls={etcd_url}"),
            &format!("--listen-peer-urls={peer_url}"),
            &format!("--initial-advertise-peer-urls={peer_url}"),
            &format!("--initial-cluster=squad={peer_url}"),
        ]);
        me.etcd = Some(spawn_logged(etcd, &root.join("etcd.log"), "etcd")?);
        me.wait_until(
            "etcd /health",
            ETCD_READY_WITHIN,
            &["-s", &format!("{etcd_url}/health")],
        )
        .await?;

        let mut apiserver = Command::new(bin);
        apiserver.args(apiserver_args(&root, &etcd_url, port, options));
        me.apiserver = Some(spawn_logged(
            apiserver,
            &root.join("kube-apiserver.log"),
            "kube-apiserver",
        )?);
        let url = me.url();
        let auth = format!("Authorization: Bearer {ADMIN_TOKEN}");
        me.wait_until(
            "kube-apiserver /readyz",
            APISERVER_READY_WITHIN,
            &["-sk", "-H", &auth, &format!("{url}/readyz")],
        )
        .await?;
        // The bootstrap controller creates `default` shortly after /readyz; tests put objects there.
        me.wait_until(
            "the default namespace",
            APISERVER_READY_WITHIN,
            &[
                "-sk",
                "-H",
                &auth,
                &format!("{url}/api/v1/namespaces/default"),
            ],
        )
        .await?;

        write(&me.kubeconfig, &kubeconfig(&url, "admin", ADMIN_TOKEN))?;
        if options.rbac {
            let path = root.join("viewer.kubeconfig");
            write(&path, &kubeconfig(&url, "viewer", VIEWER_TOKEN))?;
            me.viewer_kubeconfig = Some(path);
        }
        Ok(me)
    }

    /// A kubeconfig for the `admin` user (group `system:masters`).
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// squad's Kubernetes adapter on this apiserver, as `admin`.
    pub async fn kube_cluster(
        &self,
        clock: squad_runtime::Clock,
    ) -> Result<squad_adapters::kubernetes::KubeCluster> {
        let options = squad_adapters::kubernetes::KubeOptions {
            kubeconfig: Some(self.kubeconfig.clone()),
            ..Default::default()
        };
        Ok(squad_adapters::kubernetes::KubeCluster::connect(&options, clock).await?)
    }

    /// A kubeconfig for the unprivileged `viewer` user; `None` unless started with `rbac: true`.
    pub fn viewer_kubeconfig_path(&self) -> Option<&Path> {
        self.viewer_kubeconfig.as_deref()
    }

    /// The directory holding the state and logs of every process the harness started (removed on
    /// drop): the service-account key pair is `sa.key` / `sa.pub`, the serving certificate
    /// `certs/apiserver.crt`.
    pub(crate) fn state_dir(&self) -> &Path {
        self.dir.path()
    }

    /// `https://127.0.0.1:PORT` (self-signed: skip TLS verification).
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// A self-signed certificate and key (PEM; EC P-256; SAN `IP:127.0.0.1`) for a test's fake
    /// kubelet. The apiserver accepts any certificate, so this only saves generating one.
    pub fn kubelet_tls(&self) -> (PathBuf, PathBuf) {
        (
            self.dir.path().join("kubelet.crt"),
            self.dir.path().join("kubelet.key"),
        )
    }

    /// `kubectl --kubeconfig <admin kubeconfig>`, from `SQUAD_KUBECTL` or `PATH`.
    pub fn kubectl(&self) -> Command {
        let mut c = Command::new(kubectl_program());
        c.arg(format!("--kubeconfig={}", self.kubeconfig.display()));
        // A discovery cache of its own: kubectl's default is keyed by host:port, which tests reuse.
        c.arg(format!(
            "--cache-dir={}",
            self.kubeconfig
                .parent()
                .map_or_else(
                    || std::path::PathBuf::from("."),
                    |d| d.join("kubectl-cache")
                )
                .display()
        ));
        c
    }

    /// The last lines of the etcd and kube-apiserver logs, for failure messages.
    pub fn log_tail(&self) -> String {
        let mut out = String::new();
        for name in ["etcd.log", "kube-apiserver.log"] {
            tail_of(&mut out, &self.dir.path().join(name));
        }
        out
    }

    /// Which child, if any, has exited, and how.
    pub(crate) fn exited(&mut self) -> Result<Option<String>> {
        for (name, slot) in [
            ("etcd", &mut self.etcd),
            ("kube-apiserver", &mut self.apiserver),
        ] {
            if let Some(child) = slot
                && let Some(status) = child.try_wait().context("checking a child process")?
            {
                *slot = None;
                return Ok(Some(format!("{name} exited ({status})")));
            }
        }
        Ok(None)
    }

    /// Polls `curl ARGS` until it prints an HTTP 200, failing early if a process exits.
    async fn wait_until(&mut self, what: &str, within: Duration, curl_args: &[&str]) -> Result<()> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(exit) = self.exited()? {
                bail!("{exit} while waiting for {what}\n{}", self.log_tail());
            }
            let out = Command::new("curl")
                .args(["--max-time", "5", "-o", "/dev/null", "-w", "%{http_code}"])
                .args(curl_args)
                .output()
                .context("running curl")?;
            let code = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if code == "200" {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "{what} not ready within {within:?} (last answer: HTTP {code}, curl {})\n{}",
                    out.status,
                    self.log_tail()
                );
            }
            sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for RealApiserver {
    fn drop(&mut self) {
        // The apiserver first: stopping etcd under it makes it log errors and retry.
        if let Some(child) = self.apiserver.take() {
            stop(child);
        }
        if let Some(child) = self.etcd.take() {
            stop(child);
        }
    }
}

/// Appends the last `LOG_TAIL_LINES` lines of the log at `path` to `out`, under a heading.
pub(crate) fn tail_of(out: &mut String, path: &Path) {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let from = lines.len().saturating_sub(LOG_TAIL_LINES);
    let _ = writeln!(out, "--- last lines of {} ---", path.display());
    for line in &lines[from..] {
        let _ = writeln!(out, "{line}");
    }
}

/// SIGTERM, then wait up to `STOP_WITHIN`, then SIGKILL; always reaps the child.
// Drop cannot await, so this one wait sleeps the thread; it runs only at tear-down.
#[allow(clippy::disallowed_methods, clippy::disallowed_types)]
pub(crate) fn stop(mut child: Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = std::time::Instant::now() + STOP_WITHIN;
    while std::time::Instant::now() < deadline {
        match child.try_wait() {
            Ok(Some(_)) | Err(_) => return,
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn apiserver_args(root: &Path, etcd_url: &str, port: u16, options: Options) -> Vec<String> {
    let p = |name: &str| root.join(name).display().to_string();
    let authz = if options.rbac { "RBAC" } else { "AlwaysAllow" };
    vec![
        format!("--etcd-servers={etcd_url}"),
        format!("--secure-port={port}"),
        "--bind-address=127.0.0.1".into(),
        "--advertise-address=127.0.0.1".into(),
        // Endpoints may not hold a loopback address: don't publish the `kubernetes` service's.
        "--endpoint-reconciler-type=none".into(),
        format!("--cert-dir={}", p("certs")),
        format!("--token-auth-file={}", p("tokens.csv")),
        format!("--authorization-mode={authz}"),
        "--service-account-issuer=https://kubernetes.default.svc".into(),
        format!("--service-account-key-file={}", p("sa.pub")),
        format!("--service-account-signing-key-file={}", p("sa.key")),
        // kubeadm's default range, where the simulator allocates (kube-dns at 10.96.0.10).
        "--service-cluster-ip-range=10.96.0.0/12".into(),
        "--disable-admission-plugins=ServiceAccount".into(),
        // Logs go to "kubelets" at the Node's InternalIP, always over HTTPS (1.20 accepts
        // `--kubelet-https=false` but ignores it); with no `--kubelet-certificate-authority` the
        // apiserver skips verification, so `kubelet_tls()`'s self-signed pair is enough.
        "--kubelet-preferred-address-types=InternalIP".into(),
    ]
}

fn kubeconfig(url: &str, user: &str, token: &str) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: squad
  cluster:
    server: {url}
    insecure-skip-tls-verify: true
users:
- name: {user}
  user:
    token: {token}
contexts:
- name: squad
  context:
    cluster: squad
    user: {user}
    namespace: default
current-context: squad
"
    )
}

/// `SQUAD_KUBECTL`, else `kubectl` from `PATH`.
pub fn kubectl_program() -> PathBuf {
    std::env::var_os("SQUAD_KUBECTL")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("kubectl"))
}

fn cached_binary(name: &str) -> Option<PathBuf> {
    let cache = match std::env::var_os("SQUAD_CACHE") {
        Some(c) => PathBuf::from(c),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".cache/squad"),
    };
    Some(cache.join("kube-apiserver-1.20.2").join(name))
}

fn write_service_account_keys(root: &Path) -> Result<()> {
    let key = root.join("sa.key").display().to_string();
    let public = root.join("sa.pub").display().to_string();
    openssl(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        &key,
    ])?;
    openssl(&["pkey", "-in", &key, "-pubout", "-out", &public])
}

fn write_kubelet_serving_pair(root: &Path) -> Result<()> {
    let key = root.join("kubelet.key").display().to_string();
    let cert = root.join("kubelet.crt").display().to_string();
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        "3650",
        "-subj",
        "/CN=squad-fake-kubelet",
        "-addext",
        "subjectAltName=IP:127.0.0.1",
        "-keyout",
        &key,
        "-out",
        &cert,
    ])
}

fn openssl(args: &[&str]) -> Result<()> {
    let out: Output = Command::new("openssl")
        .args(args)
        .output()
        .context("running openssl")?;
    if !out.status.success() {
        bail!(
            "openssl {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

pub(crate) fn spawn_logged(mut cmd: Command, log: &Path, name: &str) -> Result<Child> {
    let file = fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let err = file
        .try_clone()
        .with_context(|| format!("duplicating {}", log.display()))?;
    cmd.stdin(Stdio::null())
        .stdout(file)
        .stderr(err)
        .spawn()
        .with_context(|| format!("starting {name} ({:?})", cmd.get_program()))
}

fn write(path: &Path, text: &str) -> Result<()> {
    fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}
