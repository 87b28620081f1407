//! The HTTPS pass's certificates: a throwaway CA and a certificate for 127.0.0.1 from the openssl
//! CLI, and the client that trusts only that CA.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use tempfile::TempDir;

/// A CA and a server certificate signed by it, on disk for the run.
pub struct TlsFiles {
    _dir: TempDir,
    pub cert: PathBuf,
    pub key: PathBuf,
    ca_pem: Vec<u8>,
}

/// Runs `openssl` in `dir` with `args` (split on whitespace).
fn openssl(dir: &Path, args: &str) -> Result<()> {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args.split_whitespace())
        .output()
        .context("running openssl")?;
    if !out.status.success() {
        bail!(
            "openssl {args}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

impl TlsFiles {
    /// ECDSA P-256 throughout, as most certificates served today are.
    pub fn generate() -> Result<TlsFiles> {
        let dir = tempfile::Builder::new()
            .prefix("squad-bench-tls-")
            .tempdir()?;
        let d = dir.path();
        let ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
        openssl(
            d,
            &format!("req -x509 {ec} -keyout ca.key -out ca.pem -subj /CN=bench-CA -days 2"),
        )?;
        openssl(
            d,
            &format!("req {ec} -keyout squad.key -out squad.csr -subj /CN=squad"),
        )?;
        std::fs::write(
            d.join("squad.ext"),
            "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        )?;
        openssl(
            d,
            "x509 -req -in squad.csr -CA ca.pem -CAkey ca.key -set_serial 1 -days 2 \
             -extfile squad.ext -out squad.pem",
        )?;
        Ok(TlsFiles {
            cert: d.join("squad.pem"),
            key: d.join("squad.key"),
            ca_pem: std::fs::read(d.join("ca.pem"))?,
            _dir: dir,
        })
    }

    /// The CA, for a client that trusts nothing else.
    pub fn ca(&self) -> Result<reqwest::Certificate> {
        reqwest::Certificate::from_pem(&self.ca_pem).context("the bench CA")
    }
}
