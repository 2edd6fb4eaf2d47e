//! A faulting AWS endpoint (every request gets the same error, counted) and proxies in front
//! of moto that inject faults or answer what moto does not implement. For what moto cannot
//! do: throttling, outages, and calls it lacks.

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
    proxy(upstream, move |req| match fault(&req.method, &req.path) {
        Fault::Pass => Reply::Pass,
        Fault::Fail => {
            let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>InternalError</Code><Message>injected</Message></Error>";
            Reply::Answer(
                format!("HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/xml\r\ncontent-length: {}\r\n\r\n{body}", body.len()).into_bytes(),
            )
        }
        Fault::Drop => Reply::Drop,
    })
    .await
}

/// A proxy in front of moto that answers the query-protocol (RDS) `Action=<action>` requests
/// itself with `200` and `xml`, and passes everything else through. For the calls moto does
/// not implement, e.g. RDS's DescribeAccountAttributes.
pub async fn answering_proxy(upstream: &str, action: &str, xml: String) -> String {
    let wanted = format!("Action={action}");
    proxy(upstream, move |req| {
        let body = String::from_utf8_lossy(&req.body);
        if req.method == "POST" && body.split('&').any(|p| p == wanted) {
            Reply::Answer(
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/xml\r\ncontent-length: {}\r\n\r\n{xml}",
                    xml.len()
                )
                .into_bytes(),
            )
        } else {
            Reply::Pass
        }
    })
    .await
}

/// RDS's DescribeAccountAttributes answer with only the ManualSnapshots quota (the shape of
/// the RDS API reference's DescribeAccountAttributesResponse).
pub fn manual_snapshots_quota(used: i64, max: i64) -> String {
    format!(
        r#"<DescribeAccountAttributesResponse xmlns="http://rds.amazonaws.com/doc/2014-10-31/">
  <DescribeAccountAttributesResult>
    <AccountQuotas>
      <AccountQuota>
        <AccountQuotaName>ManualSnapshots</AccountQuotaName>
        <Used>{used}</Used>
        <Max>{max}</Max>
      </AccountQuota>
    </AccountQuotas>
  </DescribeAccountAttributesResult>
  <ResponseMetadata>
    <RequestId>9b5c1f1e-2c1d-4a0e-9d55-0a1f6c3e7b21</RequestId>
  </ResponseMetadata>
</DescribeAccountAttributesResponse>"#
    )
}

/// What the proxy does with one request.
enum Reply {
    Pass,
    Drop,
    /// A whole HTTP response, sent instead of asking upstream.
    Answer(Vec<u8>),
}

async fn proxy<F>(upstream: &str, decide: F) -> String
where
    F: Fn(&crate::http::Request) -> Reply + Send + Sync + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
    let upstream = upstream.trim_start_matches("http://").to_string();
    let decide = Arc::new(decide);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (upstream, decide) = (upstream.clone(), decide.clone());
            tokio::spawn(async move {
                let mut client = BufReader::new(stream);
                let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else {
                    return;
                };
                let mut server = BufReader::new(server);
                while let Some(req) = crate::http::read_request(&mut client).await {
                    let reply = match decide(&req) {
                        Reply::Drop => return,
                        Reply::Answer(r) => r,
                        Reply::Pass => {
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

/// A proxy in front of moto that refuses the query-protocol (RDS) `Action=<action>` requests
/// with `400 InvalidDBInstanceState` (not retried by the SDK) and passes everything else.
pub async fn refusing_proxy(upstream: &str, action: &str) -> String {
    let wanted = format!("Action={action}");
    proxy(upstream, move |req| {
        let body = String::from_utf8_lossy(&req.body);
        if req.method == "POST" && body.split('&').any(|p| p == wanted) {
            let xml = "<ErrorResponse xmlns=\"http://rds.amazonaws.com/doc/2014-10-31/\"><Error><Type>Sender</Type><Code>InvalidDBInstanceState</Code><Message>injected: the instance cannot be deleted now</Message></Error><RequestId>x</RequestId></ErrorResponse>";
            Reply::Answer(
                format!("HTTP/1.1 400 Bad Request\r\ncontent-type: text/xml\r\ncontent-length: {}\r\n\r\n{xml}", xml.len()).into_bytes(),
            )
        } else {
            Reply::Pass
        }
    })
    .await
}
