//! Just enough HTTP/1.1 for the test servers: read one request (head and body).

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt};

pub struct Request {
    pub method: String,
    pub path: String,
    /// Header lines as received, for a proxy to pass on.
    pub head: String,
    pub body: Vec<u8>,
}

/// The next request on a keep-alive connection, or None when it closes.
pub async fn read_request<R: AsyncBufRead + Unpin>(reader: &mut R) -> Option<Request> {
    let mut line = String::new();
    if reader.read_line(&mut line).await.ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_string(), parts.next()?.to_string());
    let mut head = line.clone();
    let mut length = 0usize;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).await.ok()? == 0 {
            return None;
        }
        head.push_str(&h);
        if h == "\r\n" || h == "\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).await.ok()?;
    Some(Request {
        method,
        path,
        head,
        body,
    })
}

/// Reads one HTTP response (head and a content-length body) as raw bytes.
pub async fn read_response<R: AsyncBufRead + Unpin>(reader: &mut R) -> Option<Vec<u8>> {
    let mut raw = Vec::new();
    let mut length = 0usize;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).await.ok()? == 0 {
            return None;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        raw.extend_from_slice(h.as_bytes());
        if h == "\r\n" || h == "\n" {
            break;
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).await.ok()?;
    raw.extend_from_slice(&body);
    Some(raw)
}
