//! Errors: [`Error`] for starting the server, [`ApiError`] for what a client is answered.

use std::path::PathBuf;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read the config file {}: {source}", path.display())]
    ReadConfig {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {}: {reason}", path.display())]
    InvalidConfig { path: PathBuf, reason: String },
    #[error("{0}")]
    InvalidUpstream(String),
    #[error("cannot build the upstream HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    #[error("cannot start the HTTP client's runtime: {0}")]
    Runtime(String),
    #[error("cannot listen on {addr}: {source} (is another server on that port? pass --port)")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("the server failed: {0}")]
    Serve(#[source] std::io::Error),
}

/// An error answer: an HTTP status and a JSON body `{"error": {"code", "message"}}`, the shape
/// OpenAI clients already parse. `code` is stable; `message` says what to change.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds, sent as `Retry-After` (with `503 overloaded`).
    pub retry_after: Option<u32>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// The request is well-formed JSON but asks for something we cannot do.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    /// A compression failed for a reason that is not the request's fault.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

impl From<abridge_core::Error> for ApiError {
    fn from(error: abridge_core::Error) -> Self {
        match error {
            abridge_core::Error::InvalidInput(message) => Self::invalid(message),
            abridge_core::Error::InvalidOption(option) => {
                Self::invalid(option.describe(&crate::options::JsonFields))
            }
            abridge_core::Error::Model(error) => {
                Self::internal(format!("the scoring model failed: {error}"))
            }
        }
    }
}

#[derive(Serialize)]
struct Envelope<'a> {
    error: Body<'a>,
}

#[derive(Serialize)]
struct Body<'a> {
    code: &'a str,
    message: &'a str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Envelope {
            error: Body {
                code: self.code,
                message: &self.message,
            },
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
