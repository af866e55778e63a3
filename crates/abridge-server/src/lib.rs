//! abridge-server: compression as a service.
//!
//! - `POST /v1/compress` ([`compress`]): the library call as JSON, LLMLingua's option names.
//! - `POST /v1/chat/completions` ([`chat`]): an OpenAI-compatible proxy that compresses the
//!   messages the config (or the request's `abridge` field) selects, then forwards the request
//!   upstream and passes the answer back unchanged, streamed or not.
//! - `GET /healthz`, `GET /metrics` ([`metrics`], Prometheus text), `GET /` (a web page).
//!
//! The model is loaded once by the caller and shared; compressions run on a bounded pool of
//! blocking threads ([`pool`]) with a bounded queue in front. Every error a client sees is JSON
//! with a stable `code` ([`ApiError`]).

pub mod cancel;
pub mod chat;
pub mod compress;
pub mod config;
pub mod error;
pub mod generator;
mod listen;
pub mod metrics;
pub mod options;
pub mod pool;

use std::sync::Arc;

use abridge_core::{
    Classifier, Compressed, CompressionPlan, Embedder, EmbedderUse, Generator, Models,
    TokenClassifier, TokenCounter, TokenScorer,
};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Map, Value};
use tokio::net::TcpListener;

pub use config::Config;
pub use error::{ApiError, Error};
pub use listen::serve;

use crate::cancel::{Cancel, Cancellable};
use crate::metrics::Metrics;
use crate::pool::{Pool, PoolError};

/// The page served at `/`: plain HTML and JavaScript, no build step.
const INDEX_HTML: &str = include_str!("../static/index.html");

/// What every request handler shares.
pub struct AppState {
    pub config: Config,
    pub scorer: Arc<dyn TokenScorer + Send + Sync>,
    /// For question relevance (`auto`) and the `embedding` ranker, when one is installed.
    pub embedder: Option<Arc<dyn Embedder + Send + Sync>>,
    /// abridge-fast's classifier (`auto`, `fast`), when installed.
    pub fast: Option<Arc<dyn TokenClassifier + Send + Sync>>,
    /// The LLMLingua-2 checkpoint of the config's `[models] classifier` (`llmlingua2`).
    pub llmlingua2: Option<Arc<dyn TokenClassifier + Send + Sync>>,
    /// The instruction model of the config's `[models] rewriter` (`rewrite`).
    pub generator: Option<Arc<dyn Generator + Send + Sync>>,
    pub pool: Pool,
    pub metrics: Metrics,
    upstream: Option<chat::Upstream>,
}

/// A compression job for the pool.
type Job = Box<dyn FnOnce(&Cancel) -> abridge_core::Result<Compressed> + Send + 'static>;

impl AppState {
    pub fn new(config: Config, scorer: Arc<dyn TokenScorer + Send + Sync>) -> Result<Self, Error> {
        let upstream = chat::Upstream::from_config(&config.upstream)?;
        let pool = Pool::new(config.limits.workers(), config.limits.max_queue);
        Ok(Self {
            config,
            scorer,
            embedder: None,
            fast: None,
            llmlingua2: None,
            generator: None,
            pool,
            metrics: Metrics::default(),
            upstream,
        })
    }

    /// Adds a sentence embedder (all-MiniLM-L6-v2) for question relevance and the `embedding`
    /// rank method.
    pub fn with_embedder(mut self, embedder: Arc<dyn Embedder + Send + Sync>) -> Self {
        self.embedder = Some(embedder);
        self
    }

    /// Adds abridge-fast's classifier (`auto`, `fast`).
    pub fn with_fast(mut self, classifier: Arc<dyn TokenClassifier + Send + Sync>) -> Self {
        self.fast = Some(classifier);
        self
    }

    /// Adds an LLMLingua-2 checkpoint (`llmlingua2`).
    pub fn with_llmlingua2(mut self, classifier: Arc<dyn TokenClassifier + Send + Sync>) -> Self {
        self.llmlingua2 = Some(classifier);
        self
    }

    /// Adds the instruction model `rewrite` writes with.
    pub fn with_generator(mut self, generator: Arc<dyn Generator + Send + Sync>) -> Self {
        self.generator = Some(generator);
        self
    }

    /// A job for [`Self::run_blocking`] that compresses the plan's request with the models it
    /// needs, or why the server cannot.
    fn compression<C: TokenCounter + Send + Sync + 'static>(
        &self,
        plan: CompressionPlan,
        counter: Arc<C>,
    ) -> Result<Job, ApiError> {
        let unavailable = |message: &str| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "model_unavailable",
                message,
            )
        };
        let generator = match plan.needs.generator {
            true => Some(self.generator.clone().ok_or_else(|| {
                unavailable("this server has no rewrite generator (`rewrite` writes with an instruction model): set [models] rewriter = \"PATH.gguf\" in its config (scripts/fetch-evaluator.py installs Qwen2.5-Coder-0.5B-Instruct), or pass another \"method\"")
            })?),
            false => None,
        };
        let classifier = match plan.needs.classifier {
            None => None,
            Some(Classifier::Fast) => Some(self.fast.clone().ok_or_else(|| {
                unavailable("this server has no abridge-fast classifier (`auto` and `fast` read it): install it with `abridge models fetch` and restart, or pass another \"method\"")
            })?),
            Some(Classifier::Checkpoint) => Some(self.llmlingua2.clone().ok_or_else(|| {
                unavailable("this server has no LLMLingua-2 classifier: set [models] classifier = \"DIR\" in its config, or use \"method\": \"fast\"")
            })?),
        };
        let embedder = match plan.needs.embedder {
            EmbedderUse::No => None,
            EmbedderUse::IfInstalled => self.embedder.clone(),
            EmbedderUse::Required => Some(self.embedder.clone().ok_or_else(|| {
                unavailable("this server has no sentence embedder (all-MiniLM-L6-v2): install it with `abridge models fetch`, or choose another \"rank_method\"")
            })?),
        };
        let scorer = Arc::clone(&self.scorer);
        Ok(Box::new(move |cancel: &Cancel| {
            let scorer = Cancellable {
                model: scorer.as_ref() as &dyn TokenScorer,
                cancel,
            };
            let embedder = embedder.as_deref().map(|model| Cancellable {
                model: model as &dyn Embedder,
                cancel,
            });
            let classifier = classifier.as_deref().map(|model| Cancellable {
                model: model as &dyn TokenClassifier,
                cancel,
            });
            let generator = generator.as_deref().map(|model| Cancellable {
                model: model as &dyn Generator,
                cancel,
            });
            let models = Models {
                scorer: Some(&scorer),
                counter: counter.as_ref(),
                embedder: embedder.as_ref().map(|e| e as &dyn Embedder),
                classifier: classifier.as_ref().map(|c| c as &dyn TokenClassifier),
                generator: generator.as_ref().map(|g| g as &dyn Generator),
            };
            abridge_core::compress_with(&plan.request, models, None)
        }))
    }

    /// When a request that starts now must have finished compressing.
    fn deadline(&self) -> tokio::time::Instant {
        tokio::time::Instant::now() + self.config.request_timeout()
    }

    /// Runs a compression (or any CPU-bound job) on the pool, if it can finish by `deadline`
    /// (one per request, however many compressions it needs).
    async fn run_blocking<T, F>(
        &self,
        deadline: tokio::time::Instant,
        job: F,
    ) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Cancel) -> T + Send + 'static,
    {
        let timeout = self.config.request_timeout();
        self.pool.run(deadline, job).await.map_err(|error| match error {
            PoolError::Full => ApiError {
                retry_after: Some(2),
                ..ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "overloaded",
                    format!(
                        "every worker is busy and {} compressions are queued (limits.max_queue): retry later",
                        self.pool.queued()
                    ),
                )
            },
            PoolError::Timeout => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "timeout",
                format!(
                    "the compression did not finish within {:.0} s (limits.request_timeout_seconds): the server is busy or the input is long; retry later or raise the limit",
                    timeout.as_secs_f64()
                ),
            ),
            PoolError::Panicked => ApiError::internal("the compression failed unexpectedly (a bug in abridge)"),
        })
    }
}

/// The service's routes, with the body limit and request metrics applied.
pub fn router(state: Arc<AppState>) -> Router {
    let max_body = state.config.limits.max_body_bytes;
    Router::new()
        .route("/", get(|| async { Html(INDEX_HTML) }))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/v1/compress", post(compress::handle))
        .route("/v1/chat/completions", post(chat::handle))
        .fallback(|| async {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "no such endpoint: see GET / for the web page, POST /v1/compress, POST /v1/chat/completions",
            )
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this endpoint does not take that HTTP method (the APIs take POST with a JSON body)",
            )
        })
        .layer(DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn_with_state(Arc::clone(&state), read_body))
        .layer(middleware::from_fn_with_state(Arc::clone(&state), track))
        .with_state(state)
}

/// What connections beyond `limits.max_connections` are served: `/healthz`, and `503
/// overloaded` for everything else.
pub(crate) fn overflow_router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .fallback(|| async {
            ApiError {
                retry_after: Some(2),
                ..ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "overloaded",
                    "the server has too many open connections (limits.max_connections): retry later",
                )
            }
        })
        .layer(middleware::from_fn_with_state(Arc::clone(&state), track))
        .with_state(state)
}

/// Reads the whole request body before the handler runs, so a body that is too large is refused
/// before any of it is read (from its `Content-Length`) and one that arrives too slowly is cut
/// off (`408`, connection closed) instead of holding the connection.
async fn read_body(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let limits = &state.config.limits;
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limits.max_body_bytes as u64) {
        return closing(body_too_large());
    }
    let (parts, body) = request.into_parts();
    let read = tokio::time::timeout(
        limits.body_timeout(),
        axum::body::to_bytes(body, limits.max_body_bytes),
    )
    .await;
    let bytes = match read {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(e)) => {
            let too_large = std::error::Error::source(&e)
                .is_some_and(|source| source.is::<http_body_util::LengthLimitError>());
            return closing(if too_large {
                body_too_large()
            } else {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_body",
                    format!("cannot read the request body: {e}"),
                )
            });
        }
        Err(_) => {
            return closing(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                format!(
                    "the request body did not arrive within {} s (limits.body_timeout_seconds): send it at once",
                    limits.body_timeout_seconds
                ),
            ))
        }
    };
    next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
        .await
}

/// An error answer after which the connection is closed (its body was not, or not all, read).
fn closing(error: ApiError) -> Response {
    let mut response = error.into_response();
    response.headers_mut().insert(
        header::CONNECTION,
        header::HeaderValue::from_static("close"),
    );
    response
}

fn body_too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        "the request body is over the server's limit (limits.max_body_bytes): send less text per request",
    )
}

/// Binds a TCP listener; port 0 picks a free one (see `local_addr`).
pub async fn bind(host: &str, port: u16) -> Result<TcpListener, Error> {
    TcpListener::bind((host, port))
        .await
        .map_err(|source| Error::Bind {
            addr: format!("{host}:{port}"),
            source,
        })
}

/// Resolves on Ctrl-C or SIGTERM (what `docker stop` and systemd send).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        // If the handler cannot be installed, only SIGTERM stops the server gracefully.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}

/// Records every request's route, status and latency (to the response head: a stream's body
/// may go on for minutes) and logs it. No prompt text and no header is logged.
async fn track(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    // Route templates only (never the raw path), so label values are few and need no escaping.
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("other", |path| path.as_str())
        .to_string();
    let method = request.method().clone();
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    state.metrics.record_request(&route, status, elapsed);
    tracing::info!(
        %method,
        route,
        status,
        ms = (elapsed.as_secs_f64() * 1e3).round(),
        "request"
    );
    response
}

async fn healthz(State(state): State<Arc<AppState>>) -> Json<Value> {
    Json(serde_json::json!({
        "status": "ok",
        "workers": state.pool.size(),
        "busy": state.pool.busy(),
        "queued": state.pool.queued(),
        "upstream": state.upstream.is_some(),
    }))
}

async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(&state.pool),
    )
}

/// A request body as a JSON object, or the 4xx that says what is wrong with it.
fn json_object(body: Result<Bytes, BytesRejection>) -> Result<Map<String, Value>, ApiError> {
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            body_too_large()
        } else {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_body",
                format!("cannot read the request body: {}", rejection.body_text()),
            )
        }
    })?;
    let text = std::str::from_utf8(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_utf8",
            format!(
                "the request body is not valid UTF-8 (bad byte at offset {}): send JSON encoded as UTF-8",
                e.valid_up_to()
            ),
        )
    })?;
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!(
                "the request body must be a JSON object, got {}",
                json_type(&other)
            ),
        )),
        Err(e) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("the request body is not valid JSON: {e}"),
        )),
    }
}

/// Deserializes `value` into `T`, naming the path of a wrong field in the error
/// (`abridge.rate: invalid type: ...`).
fn from_json<T: serde::de::DeserializeOwned>(value: Value, prefix: &str) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let at = match (prefix.is_empty(), path == ".") {
            (true, true) => String::new(),
            (true, false) => format!("{path}: "),
            (false, true) => format!("{prefix}: "),
            (false, false) => format!("{prefix}.{path}: "),
        };
        ApiError::invalid(format!("{at}{}", e.into_inner()))
    })
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(bytes: &'static [u8]) -> Result<Bytes, BytesRejection> {
        Ok(Bytes::from_static(bytes))
    }

    #[test]
    fn bodies_that_are_not_json_objects_are_named() {
        let cases: [(&[u8], &str, &str); 4] = [
            (b"{\"a\": \xff}", "invalid_utf8", "offset 6"),
            (b"{\"a\": ", "invalid_json", "EOF"),
            (b"[1, 2]", "invalid_request", "got an array"),
            (b"null", "invalid_request", "got null"),
        ];
        for (bytes, code, message) in cases {
            let error = json_object(Ok(Bytes::copy_from_slice(bytes))).unwrap_err();
            assert_eq!((error.status, error.code), (StatusCode::BAD_REQUEST, code));
            assert!(error.message.contains(message), "{}", error.message);
        }
        assert_eq!(json_object(body(b"{\"a\": 1}")).unwrap()["a"], 1);
    }

    #[test]
    fn type_errors_name_the_field() {
        let value = serde_json::json!({"rate": "half"});
        let error = from_json::<abridge_core::CompressionOptions>(value.clone(), "").unwrap_err();
        assert!(
            error.message.starts_with("rate: invalid type"),
            "{}",
            error.message
        );
        let error = from_json::<abridge_core::CompressionOptions>(value, "abridge").unwrap_err();
        assert!(
            error.message.starts_with("abridge.rate: "),
            "{}",
            error.message
        );
    }
}
