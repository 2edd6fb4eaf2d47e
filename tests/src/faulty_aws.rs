//! A faulting AWS endpoint: answers every request with the same error, and counts them.
//! For what moto cannot do: throttling and outages.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

pub struct FaultyAws {
    pub endpoint: String,
    requests: Arc<AtomicUsize>,
}

impl FaultyAws {
    /// Every request gets `400 ThrottlingException` (JSON protocols: Secrets Manager, EventBridge).
    pub async fn throttling() -> FaultyAws {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = requests.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let counter = counter.clone();
                tokio::spawn(async move {
                    let mut reader = BufReader::new(stream);
                    while crate::http::read_request(&mut reader).await.is_some() {
                        counter.fetch_add(1, Ordering::SeqCst);
                        let body = r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#;
                        let reply = format!(
                            "HTTP/1.1 400 Bad Request\r\ncontent-type: application/x-amz-json-1.1\r\n\
                             x-amzn-errortype: ThrottlingException\r\ncontent-length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        if reader.get_mut().write_all(reply.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        FaultyAws { endpoint, requests }
    }

    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// An SDK config pointed here, with fast retries (the SDK's standard mode, 3 attempts).
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        let retry = aws_config::retry::RetryConfig::standard()
            .with_max_attempts(3)
            .with_initial_backoff(std::time::Duration::from_millis(10));
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_secretsmanager::config::Credentials::new(
                "t", "t", None, None, "test",
            ))
            .retry_config(retry)
            .load()
            .await
    }
}

/// What the proxy does with a request.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Pass,
    /// `500 InternalError`: S3 refusing a part.
    Fail,
    /// Close the connection: the endpoint going away.
    Drop,
}

/// A proxy in front of another endpoint (moto) that injects `fault(method, path)` and passes
/// the rest through.
pub async fn failing_proxy(upstream: &str, fault: fn(&str, &str) -> Fault) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
    let upstream = upstream.trim_start_matches("http://").to_string();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let upstream = upstream.clone();
            tokio::spawn(async move {
                let mut client = BufReader::new(stream);
                let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else {
                    return;
                };
                let mut server = BufReader::new(server);
                while let Some(req) = crate::http::read_request(&mut client).await {
                    let what = fault(&req.method, &req.path);
                    if what == Fault::Drop {
                        return;
                    }
                    let reply = if what == Fault::Fail {
                        let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>InternalError</Code><Message>injected</Message></Error>";
                        format!("HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/xml\r\ncontent-length: {}\r\n\r\n{body}", body.len()).into_bytes()
                    } else {
                        if server
                            .get_mut()
                            .write_all(req.head.as_bytes())
                            .await
                            .is_err()
                            || server.get_mut().write_all(&req.body).await.is_err()
                        {
                            return;
                        }
                        match crate::http::read_response(&mut server).await {
                            Some(r) => r,
                            None => return,
                        }
                    };
                    if client.get_mut().write_all(&reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    endpoint
}
