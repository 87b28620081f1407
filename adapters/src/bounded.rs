//! Reading what other programs send, up to a cap: an HTTP answer, a child process's output, a
//! file a child wrote. A peer that sends 100 MiB costs squad at most the cap, not 100 MiB.

#[cfg(feature = "holmes")]
use std::io::Read;
#[cfg(feature = "holmes")]
use std::path::Path;

#[cfg(feature = "holmes")]
use tokio::io::{AsyncRead, AsyncReadExt};

/// Why an HTTP body was not read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BodyError {
    /// Longer than the cap: nothing past it was read.
    #[error("the answer is {length} bytes, more than the {cap} squad reads")]
    TooLarge { length: String, cap: usize },
    /// The connection failed while reading.
    #[error("{0}")]
    Read(#[from] reqwest::Error),
}

/// An HTTP answer's body, at most `cap` bytes; a longer one is an error saying so (read no
/// further than the cap).
pub(crate) async fn http_body(
    mut response: reqwest::Response,
    cap: usize,
) -> Result<Vec<u8>, BodyError> {
    if let Some(length) = response.content_length()
        && length > cap as u64
    {
        return Err(BodyError::TooLarge {
            length: length.to_string(),
            cap,
        });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > cap {
            return Err(BodyError::TooLarge {
                length: format!("over {cap}"),
                cap,
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Reads `reader` to its end, keeping only its last `keep` bytes (a child's stderr for an error
/// message; its stdout with `keep` 0): a child that writes without end neither blocks on a full
/// pipe nor grows squad's memory.
#[cfg(feature = "holmes")]
pub(crate) async fn tail(reader: Option<impl AsyncRead + Unpin>, keep: usize) -> Vec<u8> {
    let Some(mut reader) = reader else {
        return Vec::new();
    };
    let mut kept = Vec::new();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        match reader.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                kept.extend_from_slice(buf.get(..n).unwrap_or_default());
                if kept.len() > keep.saturating_mul(2).max(64 << 10) {
                    let drop = kept.len() - keep;
                    kept.drain(..drop);
                }
            }
        }
    }
    if kept.len() > keep {
        let drop = kept.len() - keep;
        kept.drain(..drop);
    }
    kept
}

/// A file, at most `cap` bytes; a longer one is an error naming it and the cap.
#[cfg(feature = "holmes")]
pub(crate) fn file(path: &Path, cap: usize) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(cap as u64 + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() > cap {
        return Err(std::io::Error::other(format!(
            "{} is more than {cap} bytes, the most squad reads",
            path.display()
        )));
    }
    Ok(bytes)
}

#[cfg(all(test, feature = "holmes"))]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn tail_keeps_the_last_bytes_of_a_long_stream() {
        let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        let kept = tail(Some(&data[..]), 1_000).await;
        assert_eq!(kept, data[data.len() - 1_000..]);
        assert!(tail(Some(&data[..]), 0).await.is_empty());
        assert!(tail(None::<&[u8]>, 10).await.is_empty());
    }

    #[test]
    fn a_file_over_the_cap_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.json");
        std::fs::write(&p, vec![b'x'; 2_000]).unwrap();
        assert_eq!(file(&p, 2_000).unwrap().len(), 2_000);
        let err = file(&p, 1_999).unwrap_err().to_string();
        assert!(err.contains("out.json") && err.contains("1999"), "{err}");
    }
}
