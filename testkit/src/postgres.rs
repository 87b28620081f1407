//! A real PostgreSQL (Debian's 15, `postgresql-15`) on a loopback port, for the Postgres store's
//! tests and the replicas' failover test. `scripts/tools` installs it; `SQUAD_POSTGRES_BIN`
//! names another `bin/` directory.
//!
//! PostgreSQL refuses to run as root: as root, the cluster is made and run as the `postgres`
//! user the Debian package creates (`setpriv`). Authentication is `trust` on loopback, the
//! superuser `squad`. Dropping the value stops the server (fast shutdown) and removes its data.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tempfile::TempDir;

use crate::process::{Service, free_port};

const DEFAULT_BIN: &str = "/usr/lib/postgresql/15/bin";
const SUPERUSER: &str = "squad";

fn bin_dir() -> PathBuf {
    std::env::var_os("SQUAD_POSTGRES_BIN").map_or_else(|| PathBuf::from(DEFAULT_BIN), PathBuf::from)
}

/// Whether PostgreSQL is installed; under CI=true a missing one is a failure, not a skip.
pub fn available_or_skip(test: &str) -> Result<bool> {
    let bin = bin_dir();
    if bin.join("postgres").exists() && bin.join("initdb").exists() {
        return Ok(true);
    }
    let why = format!(
        "{test}: no PostgreSQL in {} (scripts/tools installs Debian's postgresql-15)",
        bin.display()
    );
    if std::env::var("CI").as_deref() == Ok("true") {
        bail!("{why}; CI=true, so this is a failure, not a skip");
    }
    eprintln!("SKIPPED {why}");
    Ok(false)
}

pub struct RealPostgres {
    service: Service,
    port: u16,
    _dir: TempDir,
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// `program` as the `postgres` user when this process is root.
fn as_server_user(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=postgres",
            "--regid=postgres",
            "--init-groups",
            "--reset-env",
        ])
        .arg(program);
        c
    } else {
        Command::new(program)
    }
}

impl RealPostgres {
    /// Makes a fresh cluster and starts it, waiting until it accepts connections.
    pub async fn start() -> Result<RealPostgres> {
        let bin = bin_dir();
        let dir = tempfile::tempdir()?;
        let data = dir.path().join("data");
        if is_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()?;
            if !status.success() {
                bail!("chown postgres {}: {status}", dir.path().display());
            }
        }
        let init = as_server_user(&bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                SUPERUSER,
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ])
            .stdout(Stdio::null())
            .output()
            .context("initdb")?;
        if !init.status.success() {
            bail!(
                "initdb failed ({}): {}",
                init.status,
                String::from_utf8_lossy(&init.stderr)
            );
        }
        let port = free_port()?;
        let log_path = dir.path().join("postgres.log");
        let log = std::fs::File::create(&log_path)?;
        let child = as_server_user(&bin.join("postgres"))
            .arg("-D")
            .arg(&data)
            .args(["-h", "127.0.0.1", "-p", &port.to_string()])
            .arg("-k")
            .arg(dir.path())
            // Replicas and the store's pools connect at once.
            .args(["-c", "max_connections=200"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("start postgres")?;
        let mut service = Service::new("postgres", child, log_path).stopped_by("INT");
        let ready = bin.join("pg_isready");
        service
            .wait_until(
                || {
                    Command::new(&ready)
                        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", SUPERUSER])
                        .stdout(Stdio::null())
                        .status()
                        .is_ok_and(|s| s.success())
                },
                Duration::from_secs(60),
            )
            .await?;
        Ok(RealPostgres {
            service,
            port,
            _dir: dir,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of database `db` (as the superuser, no password).
    pub fn url(&self, db: &str) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{db}", self.port)
    }

    /// Creates a fresh database `name` (letters, digits and `_`) and returns its URL.
    pub fn create_database(&self, name: &str) -> Result<String> {
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            bail!("database name {name:?}: letters, digits and _ only");
        }
        let out = Command::new(bin_dir().join("psql"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                SUPERUSER,
            ])
            .args(["-d", "postgres", "-v", "ON_ERROR_STOP=1", "-c"])
            .arg(format!("CREATE DATABASE {name}"))
            .output()
            .context("psql")?;
        if !out.status.success() {
            bail!(
                "CREATE DATABASE {name}: {}\n{}",
                String::from_utf8_lossy(&out.stderr),
                self.service.log_tail()
            );
        }
        Ok(self.url(name))
    }

    /// The server's log so far (its last lines), for failure messages.
    pub fn log_tail(&self) -> String {
        self.service.log_tail()
    }
}
