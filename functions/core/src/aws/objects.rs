//! The object-store port for logical backups (multipart upload, so a dump is streamed and
//! never held whole), and its S3 adapter.

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, ServerSideEncryption};

use super::classify_sdk_error;
use crate::error::{Error, Result};

#[async_trait]
pub trait ObjectStore: Send + Sync {
    /// Where objects go, for messages: `s3://bucket`.
    fn location(&self) -> String;
    async fn exists(&self, key: &str) -> Result<bool>;
    async fn start_upload(&self, key: &str, content_type: &str) -> Result<String>;
    async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        part: i32,
        bytes: Vec<u8>,
    ) -> Result<String>;
    async fn complete_upload(
        &self,
        key: &str,
        upload_id: &str,
        parts: Vec<(i32, String)>,
    ) -> Result<()>;
    async fn abort_upload(&self, key: &str, upload_id: &str) -> Result<()>;
    async fn put(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> Result<()>;
    /// Every object under `prefix`, paginated.
    async fn list(&self, prefix: &str) -> Result<Vec<ListedObject>>;
    async fn delete(&self, key: &str) -> Result<()>;
    /// Streams an object's bytes to `sink`, chunk by chunk (never held whole).
    async fn read(
        &self,
        key: &str,
        sink: &mut (dyn for<'b> FnMut(&'b [u8]) -> Result<()> + Send),
    ) -> Result<u64>;
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ListedObject {
    pub key: String,
    pub size: i64,
}

pub struct S3Objects {
    client: aws_sdk_s3::Client,
    bucket: String,
    kms_key: Option<String>,
}

impl S3Objects {
    pub fn new(config: &SdkConfig, bucket: impl Into<String>, kms_key: Option<String>) -> Self {
        // Path-style addressing works with every endpoint, emulators included.
        // The dump has its own SHA-256 in the manifest; a CRC per part on top costs CPU that
        // pg_dump's compression needs on a small Lambda.
        let s3 = aws_sdk_s3::config::Builder::from(config)
            .force_path_style(true)
            .request_checksum_calculation(
                aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired,
            )
            .build();
        Self {
            client: aws_sdk_s3::Client::from_conf(s3),
            bucket: bucket.into(),
            kms_key,
        }
    }

    fn sse(&self) -> (ServerSideEncryption, Option<String>) {
        match &self.kms_key {
            Some(k) => (ServerSideEncryption::AwsKms, Some(k.clone())),
            None => (ServerSideEncryption::Aes256, None),
        }
    }

    fn what(&self, verb: &str, key: &str) -> String {
        format!("{verb} s3://{}/{key}", self.bucket)
    }
}

#[async_trait]
impl ObjectStore for S3Objects {
    fn location(&self) -> String {
        format!("s3://{}", self.bucket)
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) => {
                let not_found = e.as_service_error().is_some_and(|s| s.is_not_found());
                if not_found {
                    Ok(false)
                } else {
                    Err(classify_sdk_error(e, &self.what("head", key)))
                }
            }
        }
    }

    async fn start_upload(&self, key: &str, content_type: &str) -> Result<String> {
        let (sse, kms) = self.sse();
        let out = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .server_side_encryption(sse)
            .set_ssekms_key_id(kms)
            .send()
            .await
            .map_err(|e| classify_sdk_error(e, &self.what("start upload", key)))?;
        out.upload_id.ok_or_else(|| {
            Error::internal(format!("{}: no upload id", self.what("start upload", key)))
        })
    }

    async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        part: i32,
        bytes: Vec<u8>,
    ) -> Result<String> {
        let out = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .part_number(part)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|e| {
                classify_sdk_error(e, &self.what(&format!("upload part {part} of"), key))
            })?;
        out.e_tag
            .ok_or_else(|| Error::internal(format!("{}: no etag", self.what("upload part", key))))
    }

    async fn complete_upload(
        &self,
        key: &str,
        upload_id: &str,
        parts: Vec<(i32, String)>,
    ) -> Result<()> {
        let parts = parts
            .into_iter()
            .map(|(n, etag)| CompletedPart::builder().part_number(n).e_tag(etag).build())
            .collect::<Vec<_>>();
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| classify_sdk_error(e, &self.what("complete upload", key)))?;
        Ok(())
    }

    async fn abort_upload(&self, key: &str, upload_id: &str) -> Result<()> {
        self.client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .send()
            .await
            .map_err(|e| classify_sdk_error(e, &self.what("abort upload", key)))?;
        Ok(())
    }

    async fn put(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> Result<()> {
        let (sse, kms) = self.sse();
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .server_side_encryption(sse)
            .set_ssekms_key_id(kms)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|e| classify_sdk_error(e, &self.what("put", key)))?;
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ListedObject>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| classify_sdk_error(e, &self.what("list", prefix)))?;
            out.extend(page.contents().iter().map(|o| ListedObject {
                key: o.key().unwrap_or("").to_string(),
                size: o.size().unwrap_or(0),
            }));
            match page.next_continuation_token {
                Some(t) if page.is_truncated == Some(true) => token = Some(t),
                _ => return Ok(out),
            }
        }
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| classify_sdk_error(e, &self.what("delete", key)))?;
        Ok(())
    }

    async fn read(
        &self,
        key: &str,
        sink: &mut (dyn for<'b> FnMut(&'b [u8]) -> Result<()> + Send),
    ) -> Result<u64> {
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| classify_sdk_error(e, &self.what("read", key)))?;
        let mut body = out.body;
        let mut total = 0u64;
        while let Some(chunk) = body
            .try_next()
            .await
            .map_err(|e| Error::Retryable(format!("{}: {e}; try again", self.what("read", key))))?
        {
            total += chunk.len() as u64;
            sink(&chunk)?;
        }
        Ok(total)
    }
}
