//! The byte side of archiving: counting CSV records on a stream, and a gzip writer that
//! becomes a multipart upload only when the batch outgrows one part.

use std::io::Write;
use std::sync::Arc;

use flate2::write::{GzDecoder, GzEncoder};
use flate2::Compression;

use crate::aws::objects::ObjectStore;
use crate::digest::{hex_digest, sha256, Sha256};
use crate::error::{Error, Result};

/// Counts CSV records (as PostgreSQL's COPY writes them): newlines outside quotes.
#[derive(Default)]
pub struct CsvRecords {
    in_quotes: bool,
    pub records: u64,
}

impl CsvRecords {
    pub fn feed(&mut self, bytes: &[u8]) {
        // memchr's vectorised search jumps from one quote or newline to the next.
        for i in memchr::memchr2_iter(b'"', b'\n', bytes) {
            if bytes[i] == b'"' {
                // A doubled quote inside a quoted field toggles twice: no change.
                self.in_quotes = !self.in_quotes;
            } else if !self.in_quotes {
                self.records += 1;
            }
        }
    }
}

/// Gzip-compresses a stream into an S3 object: a single PUT for a small batch, a
/// multipart upload with at most one part in memory for a large one.
pub struct GzUpload {
    store: Arc<dyn ObjectStore>,
    key: String,
    part_bytes: usize,
    gz: GzEncoder<Vec<u8>>,
    upload: Option<String>,
    parts: Vec<(i32, String)>,
    hasher: Sha256,
    pub compressed_bytes: u64,
}

const CSV_GZIP: &str = "application/gzip";

impl GzUpload {
    pub fn new(store: Arc<dyn ObjectStore>, key: String, part_bytes: usize) -> Self {
        GzUpload {
            store,
            key,
            part_bytes,
            gz: GzEncoder::new(Vec::with_capacity(part_bytes), Compression::fast()),
            upload: None,
            parts: vec![],
            hasher: sha256(),
            compressed_bytes: 0,
        }
    }

    pub async fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.gz
            .write_all(bytes)
            .map_err(|e| Error::internal(format!("gzip: {e}")))?;
        if self.gz.get_ref().len() >= self.part_bytes {
            let part = std::mem::replace(self.gz.get_mut(), Vec::with_capacity(self.part_bytes));
            self.send_part(part).await?;
        }
        Ok(())
    }

    async fn send_part(&mut self, part: Vec<u8>) -> Result<()> {
        let upload = match &self.upload {
            Some(u) => u.clone(),
            None => {
                let u = self.store.start_upload(&self.key, CSV_GZIP).await?;
                self.upload = Some(u.clone());
                u
            }
        };
        self.hasher.update(&part);
        self.compressed_bytes += part.len() as u64;
        let n = self.parts.len() as i32 + 1;
        let etag = self.store.upload_part(&self.key, &upload, n, part).await?;
        self.parts.push((n, etag));
        Ok(())
    }

    /// Finishes the object; returns its SHA-256 once S3 has confirmed it.
    pub async fn finish(&mut self) -> Result<String> {
        let gz = std::mem::replace(
            &mut self.gz,
            GzEncoder::new(Vec::new(), Compression::fast()),
        );
        let tail = gz
            .finish()
            .map_err(|e| Error::internal(format!("gzip: {e}")))?;
        let result = match self.upload.clone() {
            None => {
                self.hasher.update(&tail);
                self.compressed_bytes += tail.len() as u64;
                self.store.put(&self.key, tail, CSV_GZIP).await
            }
            Some(upload) => {
                let sent = if tail.is_empty() {
                    Ok(())
                } else {
                    self.send_part(tail).await
                };
                match sent {
                    Ok(()) => {
                        self.store
                            .complete_upload(&self.key, &upload, std::mem::take(&mut self.parts))
                            .await
                    }
                    Err(e) => Err(e),
                }
            }
        };
        match result {
            Ok(()) => Ok(hex_digest(&self.hasher)),
            Err(e) => {
                self.abort().await;
                Err(e)
            }
        }
    }

    /// Leaves no multipart upload behind (a single PUT leaves nothing to abort).
    pub async fn abort(&mut self) {
        if let Some(upload) = self.upload.take() {
            if let Err(e) = self.store.abort_upload(&self.key, &upload).await {
                tracing::warn!(key = %self.key, error = %e, "aborting the archive upload failed; the bucket's lifecycle rule removes it");
            }
        }
    }
}

/// Reads an archive back and counts its CSV records (header included).
pub async fn count_archived(store: Arc<dyn ObjectStore>, key: String) -> Result<u64> {
    struct Counter(CsvRecords);
    impl Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.feed(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut gunzip = GzDecoder::new(Counter(CsvRecords::default()));
    let mut failed: Option<String> = None;
    store
        .read(&key, &mut |chunk| {
            if failed.is_none() {
                if let Err(e) = gunzip.write_all(chunk) {
                    failed = Some(e.to_string());
                }
            }
            Ok(())
        })
        .await?;
    if let Some(e) = failed {
        return Err(Error::internal(format!(
            "the archive {key} does not decompress: {e}"
        )));
    }
    let counter = gunzip
        .finish()
        .map_err(|e| Error::internal(format!("the archive {key} is truncated: {e}")))?;
    Ok(counter.0.records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_count_newlines_outside_quotes_only() {
        let mut c = CsvRecords::default();
        c.feed(b"id,note\n1,\"two\nlines\"\n2,\"say \"\"hi\"\"\"\n");
        assert_eq!(c.records, 3);
        // Split anywhere, same answer.
        let mut d = CsvRecords::default();
        for chunk in b"id,note\n1,\"two\nlines\"\n2,x\n".chunks(3) {
            d.feed(chunk);
        }
        assert_eq!(d.records, 3);
    }
}
