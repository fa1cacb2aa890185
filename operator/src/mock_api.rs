//! A `kube::Client` whose API server is a script, to test reconcile passes
//! without a cluster: each request is checked against the next call the
//! script expects (method, path and query, what the body holds) and
//! answered as the script says. After kube-rs's controller-rs fixtures.
//! The client's service hands each request to the script over a channel;
//! tower-test's mock would do the same, but it needs tokio's test-util
//! feature, and that feature would then differ between `cargo test` and
//! `cargo build`, which would compile the dependency tree twice.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http::header::CONTENT_TYPE;
use http::{Method, Request, Response, StatusCode};
use kube::client::Body;
use kube::Client;
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::cluster::names::FIELD_MANAGER;

/// How long the script waits for the next request.
const PATIENCE: Duration = Duration::from_secs(5);

/// A client, and the API server it talks to, to be given a script.
pub fn pair() -> (Client, ApiServer) {
    let (requests, incoming) = mpsc::unbounded_channel();
    (
        Client::new(Service(requests), "default"),
        ApiServer(incoming),
    )
}

/// A request on its way to the script, with where its answer goes.
type Exchange = (Request<Body>, oneshot::Sender<Response<Body>>);

/// The client's end of [`pair`]: a tower service whose every request goes
/// to the script.
#[derive(Clone)]
struct Service(mpsc::UnboundedSender<Exchange>);

/// The script ended, or panicked, before answering.
#[derive(Debug, thiserror::Error)]
#[error("the scripted API server is gone")]
struct Gone;

impl tower_service::Service<Request<Body>> for Service {
    type Response = Response<Body>;
    type Error = Gone;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Gone>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Gone>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let (respond, answer) = oneshot::channel();
        let sent = self.0.send((request, respond));
        Box::pin(async move {
            sent.map_err(|_| Gone)?;
            answer.await.map_err(|_| Gone)
        })
    }
}

/// The server end of [`pair`].
pub struct ApiServer(mpsc::UnboundedReceiver<Exchange>);

/// A check of a request's body beyond the fields it must hold.
type Check = Box<dyn Fn(&Value) + Send>;

/// One request the code under test is expected to send, and its answer.
pub struct Call {
    method: Method,
    /// Path and query, as kube-rs writes them.
    uri: String,
    content_type: Option<&'static str>,
    /// Fields the body must hold (see [`includes`]); `Null`: none.
    body: Value,
    checks: Vec<Check>,
    answer: Answer,
}

enum Answer {
    /// The request's body: what the API server returns for a new object,
    /// near enough.
    Echo,
    /// This status and object.
    Json(StatusCode, Value),
}

impl Call {
    fn new(method: Method, uri: String, body: Value, answer: Answer) -> Self {
        Self {
            method,
            uri,
            content_type: None,
            body,
            checks: Vec::new(),
            answer,
        }
    }

    /// A GET of `uri`, answered with `object`.
    pub fn get(uri: &str, object: Value) -> Self {
        Self::new(
            Method::GET,
            uri.into(),
            Value::Null,
            Answer::Json(StatusCode::OK, object),
        )
    }

    /// A GET of `uri`, answered "404 Not Found".
    pub fn get_missing(uri: &str) -> Self {
        let status = json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "reason": "NotFound", "code": 404,
            "message": format!("{uri} not found"),
        });
        Self::new(
            Method::GET,
            uri.into(),
            Value::Null,
            Answer::Json(StatusCode::NOT_FOUND, status),
        )
    }

    /// A list of `kind` at `uri` (query included), answered with `items`.
    pub fn list(uri: &str, kind: &str, items: Vec<Value>) -> Self {
        let list = json!({
            "kind": format!("{kind}List"), "apiVersion": "v1",
            "metadata": {"resourceVersion": "1"}, "items": items,
        });
        Self::get(uri, list)
    }

    /// A server-side apply, forced, under the operator's field manager, of
    /// the object at `path` whose body holds `body`; answered with the
    /// object applied.
    pub fn apply(path: &str, body: Value) -> Self {
        let uri = format!("{path}?&force=true&fieldManager={FIELD_MANAGER}");
        Self {
            content_type: Some("application/apply-patch+yaml"),
            ..Self::new(Method::PATCH, uri, body, Answer::Echo)
        }
    }

    /// A JSON merge patch of `uri` whose body holds `body`, answered with
    /// `object`.
    pub fn merge_patch(uri: &str, body: Value, object: Value) -> Self {
        Self {
            content_type: Some("application/merge-patch+json"),
            ..Self::new(
                Method::PATCH,
                uri.into(),
                body,
                Answer::Json(StatusCode::OK, object),
            )
        }
    }

    /// A POST to `uri` whose body holds `body`, answered with that body.
    pub fn post(uri: &str, body: Value) -> Self {
        Self::new(Method::POST, uri.into(), body, Answer::Echo)
    }

    /// The same request, refused by the API server with `code` and
    /// `message` (a Kubernetes `Status`).
    pub fn refused(self, code: u16, reason: &str, message: &str) -> Self {
        let status = json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "reason": reason, "code": code, "message": message,
        });
        let code = StatusCode::from_u16(code).expect("an HTTP status");
        Self {
            answer: Answer::Json(code, status),
            ..self
        }
    }

    /// Checks the body with `check` too, which panics on what is wrong.
    pub fn check(mut self, check: impl Fn(&Value) + Send + 'static) -> Self {
        self.checks.push(Box::new(check));
        self
    }
}

impl ApiServer {
    /// Answers the calls of `script` in order. The task panics on a request
    /// the script does not expect, or when one does not come; a request
    /// after the last call fails, the channel being closed then.
    pub fn run(mut self, script: Vec<Call>) -> JoinHandle<()> {
        tokio::spawn(async move {
            for (i, call) in script.into_iter().enumerate() {
                let step = format!("call {i}: {} {}", call.method, call.uri);
                let next = tokio::time::timeout(PATIENCE, self.0.recv()).await;
                let Ok(Some((request, respond))) = next else {
                    panic!("{step}: no request came");
                };
                let (parts, body) = request.into_parts();
                assert_eq!(
                    (&parts.method, parts.uri.to_string()),
                    (&call.method, call.uri.clone()),
                    "{step}: another request came"
                );
                if let Some(want) = call.content_type {
                    let got = parts
                        .headers
                        .get(CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok());
                    assert_eq!(got, Some(want), "{step}: content type");
                }
                let bytes = body.collect_bytes().await.expect("a body");
                let body: Value = if bytes.is_empty() {
                    Value::Null
                } else {
                    serde_json::from_slice(&bytes).expect("a JSON body")
                };
                if let Err(e) = includes(&call.body, &body) {
                    panic!("{step}: {e}\nbody: {body:#}");
                }
                for check in &call.checks {
                    check(&body);
                }
                let (status, answer) = match call.answer {
                    Answer::Echo => (StatusCode::OK, body),
                    Answer::Json(status, object) => (status, object),
                };
                let response = Response::builder()
                    .status(status)
                    .body(Body::from(answer.to_string().into_bytes()))
                    .expect("a response");
                // The client may have given up waiting; the script goes on.
                let _ = respond.send(response);
            }
        })
    }
}

/// Whether `actual` holds every field of `expected` with the same value;
/// arrays match element by element and have the same length. `Err` names
/// the first difference.
pub fn includes(expected: &Value, actual: &Value) -> Result<(), String> {
    fn walk(expected: &Value, actual: &Value, path: &str) -> Result<(), String> {
        match (expected, actual) {
            (Value::Null, _) if path == "$" => Ok(()),
            (Value::Object(e), Value::Object(a)) => {
                e.iter().try_for_each(|(k, v)| match a.get(k) {
                    Some(got) => walk(v, got, &format!("{path}.{k}")),
                    None => Err(format!("{path}.{k} is missing")),
                })
            }
            (Value::Array(e), Value::Array(a)) if e.len() == a.len() => e
                .iter()
                .zip(a)
                .enumerate()
                .try_for_each(|(i, (e, a))| walk(e, a, &format!("{path}[{i}]"))),
            (e, a) if e == a => Ok(()),
            (e, a) => Err(format!("{path}: expected {e}, got {a}")),
        }
    }
    walk(expected, actual, "$")
}
