//! A minimal Lambda Runtime API on loopback: hands events to a real function binary and
//! records its responses, errors and the time of its first `/next` poll (init time).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::Value;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

/// What the function sent back for one invocation.
#[derive(Debug, Clone)]
pub enum Outcome {
    Response(Value),
    Error(Value),
}

#[derive(Default)]
struct State {
    queue: VecDeque<(String, Value)>,
    outcomes: Vec<(String, Outcome)>,
    first_poll: Option<Instant>,
    init_error: Option<Value>,
}

#[derive(Clone)]
pub struct RuntimeApi {
    pub addr: String,
    state: Arc<Mutex<State>>,
    changed: Arc<Notify>,
}

impl RuntimeApi {
    pub async fn start() -> RuntimeApi {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind runtime api");
        let api = RuntimeApi {
            addr: listener.local_addr().expect("addr").to_string(),
            state: Arc::default(),
            changed: Arc::default(),
        };
        let server = api.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let s = server.clone();
                tokio::spawn(async move { s.serve(stream).await });
            }
        });
        api
    }

    /// Queues an event; the function receives it on its next poll.
    pub fn push(&self, request_id: &str, event: Value) {
        self.state
            .lock()
            .unwrap()
            .queue
            .push_back((request_id.to_string(), event));
        self.changed.notify_waiters();
    }

    pub fn first_poll(&self) -> Option<Instant> {
        self.state.lock().unwrap().first_poll
    }

    pub fn init_error(&self) -> Option<Value> {
        self.state.lock().unwrap().init_error.clone()
    }

    /// Waits until `n` outcomes have arrived (or an init error), up to `secs`.
    pub async fn wait_outcomes(&self, n: usize, secs: u64) -> Vec<(String, Outcome)> {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(secs);
        loop {
            let notified = self.changed.notified();
            {
                let st = self.state.lock().unwrap();
                if st.outcomes.len() >= n || st.init_error.is_some() {
                    return st.outcomes.clone();
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.state.lock().unwrap().outcomes.clone();
            }
        }
    }

    /// Waits for the first `/next` poll, up to `secs`.
    pub async fn wait_first_poll(&self, secs: u64) -> Option<Instant> {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(secs);
        loop {
            let notified = self.changed.notified();
            if let Some(t) = self.first_poll() {
                return Some(t);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.first_poll();
            }
        }
    }

    async fn serve(self, stream: TcpStream) {
        let mut reader = BufReader::new(stream);
        while let Some(req) = crate::http::read_request(&mut reader).await {
            let reply = self.route(&req.method, &req.path, &req.body).await;
            if reader.get_mut().write_all(reply.as_bytes()).await.is_err() {
                return;
            }
        }
    }

    async fn route(&self, method: &str, path: &str, body: &[u8]) -> String {
        let json = || serde_json::from_slice::<Value>(body).unwrap_or(Value::Null);
        if method == "GET" && path.ends_with("/runtime/invocation/next") {
            self.state
                .lock()
                .unwrap()
                .first_poll
                .get_or_insert_with(Instant::now);
            self.changed.notify_waiters();
            let (id, event) = loop {
                let notified = self.changed.notified();
                if let Some(item) = self.state.lock().unwrap().queue.pop_front() {
                    break item;
                }
                notified.await;
            };
            let body = event.to_string();
            let deadline = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis()
                + 60_000;
            return format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nlambda-runtime-aws-request-id: {id}\r\n\
                 lambda-runtime-deadline-ms: {deadline}\r\nlambda-runtime-invoked-function-arn: \
                 arn:aws:lambda:us-east-1:123456789012:function:test\r\nlambda-runtime-trace-id: Root=1-0-0\r\n\
                 content-length: {}\r\n\r\n{body}",
                body.len()
            );
        }
        if method == "POST" && path.ends_with("/init/error") {
            self.state.lock().unwrap().init_error = Some(json());
        } else if method == "POST" {
            let segs: Vec<&str> = path.split('/').collect();
            // /2018-06-01/runtime/invocation/{id}/response|error
            if segs.len() >= 6 {
                let outcome = if segs[5] == "response" {
                    Outcome::Response(json())
                } else {
                    Outcome::Error(json())
                };
                self.state
                    .lock()
                    .unwrap()
                    .outcomes
                    .push((segs[4].to_string(), outcome));
            }
        }
        self.changed.notify_waiters();
        "HTTP/1.1 202 Accepted\r\ncontent-length: 2\r\n\r\n{}".to_string()
    }
}

/// The environment a Lambda sandbox gives a function, pointed at `api`.
pub fn lambda_env(api: &RuntimeApi, name: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_LAMBDA_RUNTIME_API", api.addr.clone()),
        ("AWS_LAMBDA_FUNCTION_NAME", name.to_string()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".into()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "test".into()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}")),
        ("AWS_LAMBDA_LOG_FORMAT", "JSON".into()),
    ]
}

/// A function binary set up as Lambda runs it: an empty environment but PATH, the Runtime API
/// address, moto's endpoint and credentials, and `vars`. The caller chooses stdout/stderr.
pub fn function_command(
    bin: impl AsRef<std::ffi::OsStr>,
    name: &str,
    api: &RuntimeApi,
    vars: &[(&str, String)],
) -> std::process::Command {
    let mut cmd = std::process::Command::new(bin);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(lambda_env(api, name))
        .envs(crate::moto::Moto::shared().env())
        .envs(vars.iter().map(|(k, v)| (*k, v.clone())))
        .stdin(std::process::Stdio::null());
    cmd
}
