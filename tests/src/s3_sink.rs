//! A "discard" S3 endpoint, for benchmarks only: just enough of the S3 REST API
//! (path-style) for a logical backup — HeadObject (always 404), CreateMultipartUpload,
//! UploadPart, CompleteMultipartUpload, AbortMultipartUpload and PutObject — that reads part
//! bodies and throws them away, counting the bytes. It stands in for S3 where moto (Python,
//! keeping every part in memory) would compete for the CPU with what is being measured.
//!
//! It runs on its own thread (a current-thread runtime), so the caller may block, and bodies
//! are consumed straight from the read buffer, never collected: it costs next to no CPU,
//! and [`S3Sink::cpu_secs`] says how little.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// PutObject bodies up to this size are kept (the manifest); larger ones are only counted.
const KEEP_OBJECTS_UP_TO: u64 = 1 << 20;

#[derive(Default)]
struct State {
    part_bytes: AtomicU64,
    parts: AtomicU64,
    put_bytes: AtomicU64,
    completed: AtomicU64,
    aborted: AtomicU64,
    next_upload: AtomicU64,
    objects: Mutex<HashMap<String, Vec<u8>>>,
    /// Keep every PutObject body and answer GetObject and ListObjectsV2 from them (the
    /// archive benchmark reads its objects back).
    keep_all: std::sync::atomic::AtomicBool,
    /// `/proc/self/task/<tid>/stat` of the serving thread.
    stat_path: Mutex<Option<String>>,
}

pub struct S3Sink {
    pub endpoint: String,
    state: Arc<State>,
}

impl S3Sink {
    /// A sink that keeps every single-PUT object in memory and serves it back (GetObject,
    /// ListObjectsV2 by prefix): an S3 stand-in that costs next to no CPU, for archives.
    pub fn start_keeping() -> S3Sink {
        let sink = Self::start();
        sink.state
            .keep_all
            .store(true, std::sync::atomic::Ordering::SeqCst);
        sink
    }

    /// Starts the sink on a free loopback port; it lives as long as the process.
    pub fn start() -> S3Sink {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
        let state = Arc::new(State::default());
        let s = state.clone();
        std::thread::Builder::new()
            .name("s3-sink".into())
            .spawn(move || {
                // "<pid>/task/<tid>": this thread's CPU time, for cpu_secs.
                if let Ok(link) = std::fs::read_link("/proc/thread-self") {
                    *s.stat_path.lock().unwrap() = Some(format!("/proc/{}/stat", link.display()));
                }
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                rt.block_on(async move {
                    let listener = TcpListener::from_std(listener).expect("listener");
                    while let Ok((stream, _)) = listener.accept().await {
                        let s = s.clone();
                        tokio::spawn(async move {
                            let _ = serve(stream, &s).await;
                        });
                    }
                });
            })
            .expect("spawn the sink thread");
        S3Sink { endpoint, state }
    }

    /// Environment for a process that should talk to this sink (as `Moto::env`).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ]
    }

    /// Bytes of every UploadPart body received (and discarded) so far.
    pub fn part_bytes(&self) -> u64 {
        self.state.part_bytes.load(Ordering::SeqCst)
    }

    pub fn parts(&self) -> u64 {
        self.state.parts.load(Ordering::SeqCst)
    }

    pub fn completed_uploads(&self) -> u64 {
        self.state.completed.load(Ordering::SeqCst)
    }

    pub fn aborted_uploads(&self) -> u64 {
        self.state.aborted.load(Ordering::SeqCst)
    }

    /// A small object written with PutObject (`bucket/key`), e.g. a manifest.
    pub fn object(&self, bucket_and_key: &str) -> Option<Vec<u8>> {
        self.state
            .objects
            .lock()
            .unwrap()
            .get(bucket_and_key)
            .cloned()
    }

    /// Keys (`bucket/key`) of the small objects kept.
    pub fn object_keys(&self) -> Vec<String> {
        self.state.objects.lock().unwrap().keys().cloned().collect()
    }

    /// CPU seconds (user + system) the serving thread has used so far.
    pub fn cpu_secs(&self) -> f64 {
        let path = self.state.stat_path.lock().unwrap().clone();
        path.and_then(|p| std::fs::read_to_string(p).ok())
            .and_then(|s| stat_cpu_secs(&s))
            .unwrap_or(0.0)
    }
}

/// utime + stime from a `/proc/.../stat` line, in seconds (USER_HZ = 100).
pub fn stat_cpu_secs(stat: &str) -> Option<f64> {
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}

struct Head {
    method: String,
    /// Path (`/bucket/key`, still percent-encoded) and query.
    path: String,
    query: String,
    length: u64,
    expect_continue: bool,
}

async fn read_head<R: AsyncBufRead + Unpin>(r: &mut R) -> Option<Head> {
    let mut line = String::new();
    if r.read_line(&mut line).await.ok()? == 0 {
        return None;
    }
    let mut it = line.split_whitespace();
    let method = it.next()?.to_string();
    let target = it.next()?;
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut head = Head {
        method,
        path: path.to_string(),
        query: query.to_string(),
        length: 0,
        expect_continue: false,
    };
    loop {
        line.clear();
        if r.read_line(&mut line).await.ok()? == 0 {
            return None;
        }
        if line == "\r\n" || line == "\n" {
            return Some(head);
        }
        if let Some((k, v)) = line.split_once(':') {
            let v = v.trim();
            if k.eq_ignore_ascii_case("content-length") {
                head.length = v.parse().ok()?;
            } else if k.eq_ignore_ascii_case("expect") && v.eq_ignore_ascii_case("100-continue") {
                head.expect_continue = true;
            } else if k.eq_ignore_ascii_case("transfer-encoding") {
                // The SDK sends a length with every body here (no aws-chunked: checksums
                // only when required); anything else is not spoken.
                return None;
            }
        }
    }
}

/// Reads and drops `n` body bytes straight from the read buffer.
async fn discard<R: AsyncBufRead + Unpin>(r: &mut R, mut n: u64) -> Option<()> {
    while n > 0 {
        let buf = r.fill_buf().await.ok()?;
        if buf.is_empty() {
            return None;
        }
        let take = buf.len().min(n as usize);
        r.consume(take);
        n -= take as u64;
    }
    Some(())
}

/// `%2F` and friends in a path or query value.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn has_param(query: &str, name: &str) -> bool {
    query
        .split('&')
        .any(|p| p == name || p.starts_with(&format!("{name}=")))
}

async fn reply(w: &mut TcpStream, status: &str, headers: &str, body: &str) -> std::io::Result<()> {
    let msg = format!(
        "HTTP/1.1 {status}\r\nx-amz-request-id: sink\r\n{headers}content-length: {}\r\n\r\n{body}",
        body.len()
    );
    w.write_all(msg.as_bytes()).await
}

async fn serve(stream: TcpStream, s: &State) -> Option<()> {
    stream.set_nodelay(true).ok();
    let mut r = BufReader::with_capacity(256 * 1024, stream);
    while let Some(h) = read_head(&mut r).await {
        if h.expect_continue {
            r.get_mut()
                .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                .await
                .ok()?;
        }
        let object = h.path.trim_start_matches('/').to_string();
        let (bucket, key) = object.split_once('/').unwrap_or((&object, ""));
        let (bucket, key) = (bucket.to_string(), key.to_string());
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>"#;
        let result = match h.method.as_str() {
            "HEAD" => {
                // Dumps are never kept: every slot is free.
                reply(r.get_mut(), "404 Not Found", "", "").await
            }
            "GET" if has_param(&h.query, "list-type") => {
                let prefix = h
                    .query
                    .split('&')
                    .find_map(|p| p.strip_prefix("prefix="))
                    .map(percent_decode)
                    .unwrap_or_default();
                let mut keys: Vec<(String, usize)> = s
                    .objects
                    .lock()
                    .unwrap()
                    .iter()
                    .filter_map(|(k, v)| {
                        let key = k.strip_prefix(&format!("{bucket}/"))?;
                        key.starts_with(&prefix).then(|| (key.to_string(), v.len()))
                    })
                    .collect();
                keys.sort();
                let contents: String = keys
                    .iter()
                    .map(|(k, n)| format!("<Contents><Key>{k}</Key><Size>{n}</Size></Contents>"))
                    .collect();
                let body = format!(
                    "{xml}<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>{bucket}</Name>\
                     <Prefix>{prefix}</Prefix><KeyCount>{}</KeyCount><IsTruncated>false</IsTruncated>{contents}</ListBucketResult>",
                    keys.len()
                );
                reply(
                    r.get_mut(),
                    "200 OK",
                    "content-type: application/xml\r\n",
                    &body,
                )
                .await
            }
            "GET" => {
                let body = s
                    .objects
                    .lock()
                    .unwrap()
                    .get(&percent_decode(&object))
                    .cloned();
                match body {
                    Some(b) => {
                        let head = format!(
                            "HTTP/1.1 200 OK\r\nx-amz-request-id: sink\r\ncontent-length: {}\r\n\r\n",
                            b.len()
                        );
                        let w = r.get_mut();
                        match w.write_all(head.as_bytes()).await {
                            Ok(()) => w.write_all(&b).await,
                            Err(e) => Err(e),
                        }
                    }
                    None => {
                        let body = format!("{xml}<Error><Code>NoSuchKey</Code><Message>no such key</Message></Error>");
                        reply(
                            r.get_mut(),
                            "404 Not Found",
                            "content-type: application/xml\r\n",
                            &body,
                        )
                        .await
                    }
                }
            }
            "PUT" if has_param(&h.query, "partNumber") => {
                discard(&mut r, h.length).await?;
                s.part_bytes.fetch_add(h.length, Ordering::SeqCst);
                let n = s.parts.fetch_add(1, Ordering::SeqCst);
                reply(
                    r.get_mut(),
                    "200 OK",
                    &format!("ETag: \"sink-part-{n}\"\r\n"),
                    "",
                )
                .await
            }
            "PUT" => {
                if h.length <= KEEP_OBJECTS_UP_TO || s.keep_all.load(Ordering::SeqCst) {
                    let mut body = vec![0u8; h.length as usize];
                    r.read_exact(&mut body).await.ok()?;
                    s.objects
                        .lock()
                        .unwrap()
                        .insert(percent_decode(&object), body);
                } else {
                    discard(&mut r, h.length).await?;
                }
                s.put_bytes.fetch_add(h.length, Ordering::SeqCst);
                reply(r.get_mut(), "200 OK", "ETag: \"sink-object\"\r\n", "").await
            }
            "POST" if has_param(&h.query, "uploads") => {
                discard(&mut r, h.length).await?;
                let id = s.next_upload.fetch_add(1, Ordering::SeqCst);
                let body = format!(
                    "{xml}<InitiateMultipartUploadResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
                     <Bucket>{bucket}</Bucket><Key>{key}</Key><UploadId>sink-upload-{id}</UploadId>\
                     </InitiateMultipartUploadResult>"
                );
                reply(
                    r.get_mut(),
                    "200 OK",
                    "content-type: application/xml\r\n",
                    &body,
                )
                .await
            }
            "POST" if has_param(&h.query, "uploadId") => {
                discard(&mut r, h.length).await?;
                s.completed.fetch_add(1, Ordering::SeqCst);
                let body = format!(
                    "{xml}<CompleteMultipartUploadResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
                     <Location>http://sink/{object}</Location><Bucket>{bucket}</Bucket><Key>{key}</Key>\
                     <ETag>\"sink-upload\"</ETag></CompleteMultipartUploadResult>"
                );
                reply(
                    r.get_mut(),
                    "200 OK",
                    "content-type: application/xml\r\n",
                    &body,
                )
                .await
            }
            "DELETE" => {
                discard(&mut r, h.length).await?;
                if has_param(&h.query, "uploadId") {
                    s.aborted.fetch_add(1, Ordering::SeqCst);
                }
                reply(r.get_mut(), "204 No Content", "", "").await
            }
            _ => {
                discard(&mut r, h.length).await?;
                let body = format!(
                    "{xml}<Error><Code>NotImplemented</Code><Message>the benchmark sink does not speak {} {}</Message></Error>",
                    h.method, h.path
                );
                reply(
                    r.get_mut(),
                    "501 Not Implemented",
                    "content-type: application/xml\r\n",
                    &body,
                )
                .await
            }
        };
        result.ok()?;
    }
    Some(())
}
