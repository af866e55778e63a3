//! `POST /v1/chat/completions`: an OpenAI-compatible compressing proxy.
//!
//! The request's selected message contents are compressed, one compression per content (or per
//! text part of a multi-part content), and the request is forwarded to
//! `{upstream}/chat/completions` with the client's credentials. The upstream's answer comes back
//! as it was sent, byte for byte, streamed (SSE) or not, with `x-abridge-*` headers added.
//!
//! What is compressed: contents of the `[proxy]` roles of at least `min_tokens` target-LLM
//! tokens, never the last user message (the question) unless `compress_last_user`. A request
//! may change that with an `abridge` field, which is removed before forwarding:
//!
//! ```json
//! "abridge": {"enabled": true, "roles": ["tool"], "messages": [1, 3], "min_tokens": 0,
//!             "compress_last_user": false, "compress": {"rate": 0.3}}
//! ```
//!
//! `messages` lists message indices to compress instead of choosing by role (a listed last user
//! message is compressed: it was asked for). Upstream failures are answered with `502`
//! (`upstream_unreachable`, `upstream_error` for a 5xx) or `504` (`upstream_timeout`); an
//! upstream 4xx (bad key, unknown model) is passed through as it is, since it is the upstream's
//! answer to the client's request.

use std::sync::Arc;
use std::time::Duration;

use abridge_core::TokenCounter;
use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;

use crate::config::{check_upstream_url, UpstreamConfig};
use crate::options::{counter, plan};
use crate::{from_json, json_object, ApiError, AppState, Error};
use abridge_core::CompressionOptions;

/// Request headers forwarded upstream: credentials and OpenAI's routing headers. Everything else
/// (cookies, hop-by-hop headers, `accept-encoding`, which would let the upstream compress a
/// body we promise to pass through as it is) stays here.
const FORWARDED_REQUEST_HEADERS: [&str; 6] = [
    "authorization",
    "api-key",
    "openai-organization",
    "openai-project",
    "openai-beta",
    "accept",
];

/// Hop-by-hop headers (RFC 9110 §7.6.1) and the framing this server redoes itself.
const UNFORWARDED_RESPONSE_HEADERS: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
];

/// How much of an upstream 5xx body is quoted in the 502 message.
const QUOTED_ERROR_CHARS: usize = 500;

/// The upstream API and the client that talks to it.
pub struct Upstream {
    completions_url: String,
    client: reqwest::Client,
    response_timeout: Duration,
}

impl Upstream {
    /// `None` when no upstream is configured (the proxy endpoint then answers 503).
    pub fn from_config(config: &UpstreamConfig) -> Result<Option<Self>, Error> {
        let Some(url) = &config.url else {
            return Ok(None);
        };
        check_upstream_url(url).map_err(Error::InvalidUpstream)?;
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs_f64(config.connect_timeout_seconds))
            // Per read, not in total: a streamed answer may rightly take minutes.
            .read_timeout(Duration::from_secs_f64(config.idle_timeout_seconds))
            // Redirects would resend the client's key to another host.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(Error::Client)?;
        Ok(Some(Self {
            completions_url: format!("{}/chat/completions", url.trim_end_matches('/')),
            client,
            response_timeout: Duration::from_secs_f64(config.response_timeout_seconds),
        }))
    }
}

/// The request's `abridge` field.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Extension {
    /// `false` forwards the request untouched.
    enabled: Option<bool>,
    roles: Option<Vec<String>>,
    messages: Option<Vec<usize>>,
    min_tokens: Option<usize>,
    compress_last_user: Option<bool>,
    compress: CompressionOptions,
}

/// One text to compress: `messages[message].content`, or its `part`-th text part.
struct Slot {
    message: usize,
    part: Option<usize>,
}

pub async fn handle(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let upstream = state.upstream.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no_upstream",
            "this server has no upstream to forward chat completions to: start it with --upstream URL or set [upstream] url in its config",
        )
    })?;
    let mut request = json_object(body)?;
    let extension: Extension = match request.remove("abridge") {
        None | Some(Value::Null) => Extension::default(),
        Some(value) => from_json(value, "abridge")?,
    };
    let options = extension.compress.over(&state.config.compress);
    // Checked before any work, so a bad option fails the same whether or not anything is long
    // enough to compress.
    // (The chat's last user turn will be the question: a placeholder stands in.)
    let reads_question = plan(&options, String::new(), vec!["x".into()], "?".into())?
        .method
        .reads_question();
    let counter = Arc::new(counter(&options)?);

    let messages = match request.get_mut("messages") {
        Some(Value::Array(messages)) => messages,
        _ => {
            return Err(ApiError::invalid(
                "messages must be a list of {\"role\", \"content\"} objects",
            ))
        }
    };
    let slots = select(messages, &extension, &state)?;
    let last_user = last_user(messages);
    let question = last_user.map_or_else(String::new, |i| texts(&messages[i]).join("\n"));
    let deadline = state.deadline();
    let mut origin_tokens = 0;
    let mut compressed_tokens = 0;
    let mut compressed = 0;
    let min_tokens = extension
        .min_tokens
        .unwrap_or(state.config.proxy.min_tokens);
    for message in messages.iter() {
        for text in texts(message) {
            origin_tokens += counter.count(text);
        }
    }
    for slot in slots {
        let Some(text) = slot_text(messages, &slot) else {
            continue;
        };
        if text.trim().is_empty() || counter.count(text) < min_tokens {
            continue;
        }
        // A question-aware method reads the last user turn as the question (not when that turn
        // is the text compressed); the question stays in its own message.
        let question = match reads_question && Some(slot.message) != last_user {
            true => question.clone(),
            false => String::new(),
        };
        let mut plan = plan(&options, String::new(), vec![text.to_string()], question)?;
        plan.set_question_aside(counter.as_ref());
        let question = plan.request.question.clone();
        let job = state.compression(plan, Arc::clone(&counter))?;
        let result = state.run_blocking(deadline, job).await??;
        state
            .metrics
            .record_compression(result.origin_tokens, result.compressed_tokens);
        let text = result.text_without(&question).to_string();
        set_slot_text(messages, &slot, text);
        compressed += 1;
    }
    for message in messages.iter() {
        for text in texts(message) {
            compressed_tokens += counter.count(text);
        }
    }
    tracing::debug!(
        compressed,
        origin_tokens,
        compressed_tokens,
        "chat request compressed"
    );

    let body = serde_json::to_vec(&request)
        .map_err(|e| ApiError::internal(format!("cannot encode the request: {e}")))?;
    let mut response = forward(upstream, &headers, body).await?;
    let added = response.headers_mut();
    added.insert("x-abridge-origin-tokens", HeaderValue::from(origin_tokens));
    added.insert(
        "x-abridge-compressed-tokens",
        HeaderValue::from(compressed_tokens),
    );
    added.insert(
        "x-abridge-compressed-messages",
        HeaderValue::from(compressed),
    );
    Ok(response)
}

/// The contents to compress, in message order.
fn select(
    messages: &[Value],
    extension: &Extension,
    state: &AppState,
) -> Result<Vec<Slot>, ApiError> {
    if extension.enabled == Some(false) {
        return Ok(Vec::new());
    }
    for (i, message) in messages.iter().enumerate() {
        if role(message).is_none() {
            return Err(ApiError::invalid(format!(
                "messages[{i}] must be an object with a string `role`"
            )));
        }
    }
    let proxy = &state.config.proxy;
    let roles = extension.roles.as_ref().unwrap_or(&proxy.roles);
    let compress_last_user = extension
        .compress_last_user
        .unwrap_or(proxy.compress_last_user);
    let last_user = last_user(messages);
    let chosen: Vec<usize> = match &extension.messages {
        Some(indices) => {
            if let Some(&i) = indices.iter().find(|&&i| i >= messages.len()) {
                return Err(ApiError::invalid(format!(
                    "abridge.messages: there is no message {i}; indices are 0-based and there are {} messages",
                    messages.len()
                )));
            }
            (0..messages.len())
                .filter(|i| indices.contains(i))
                .collect()
        }
        None => (0..messages.len())
            .filter(|&i| {
                roles.iter().any(|r| Some(r) == role(&messages[i]).as_ref())
                    && (compress_last_user || Some(i) != last_user)
            })
            .collect(),
    };
    let mut slots = Vec::new();
    for message in chosen {
        match messages[message].get("content") {
            Some(Value::String(_)) => slots.push(Slot {
                message,
                part: None,
            }),
            Some(Value::Array(parts)) => slots.extend(
                parts
                    .iter()
                    .enumerate()
                    .filter(|(_, part)| part_text(part).is_some())
                    .map(|(part, _)| Slot {
                        message,
                        part: Some(part),
                    }),
            ),
            // Images, audio, null contents of tool calls: nothing to compress.
            _ => {}
        }
    }
    Ok(slots)
}

fn role(message: &Value) -> Option<String> {
    message
        .get("role")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// The index of the last user message: the question the LLM is asked.
fn last_user(messages: &[Value]) -> Option<usize> {
    messages
        .iter()
        .rposition(|m| role(m).as_deref() == Some("user"))
}

/// `{"type": "text", "text": "..."}`.
fn part_text(part: &Value) -> Option<&str> {
    (part.get("type")?.as_str()? == "text")
        .then(|| part.get("text")?.as_str())
        .flatten()
}

/// Every text of one message's content.
fn texts(message: &Value) -> Vec<&str> {
    match message.get("content") {
        Some(Value::String(text)) => vec![text.as_str()],
        Some(Value::Array(parts)) => parts.iter().filter_map(part_text).collect(),
        _ => Vec::new(),
    }
}

fn slot_text<'a>(messages: &'a [Value], slot: &Slot) -> Option<&'a str> {
    let content = messages[slot.message].get("content")?;
    match slot.part {
        None => content.as_str(),
        Some(part) => part_text(content.get(part)?),
    }
}

fn set_slot_text(messages: &mut [Value], slot: &Slot, text: String) {
    let Some(content) = messages[slot.message].get_mut("content") else {
        return;
    };
    let target = match slot.part {
        None => Some(content),
        Some(part) => content.get_mut(part).and_then(|p| p.get_mut("text")),
    };
    if let Some(target) = target {
        *target = Value::String(text);
    }
}

/// Sends the request upstream and turns its answer into ours.
async fn forward(
    upstream: &Upstream,
    headers: &HeaderMap,
    body: Vec<u8>,
) -> Result<Response, ApiError> {
    let mut request = upstream
        .client
        .post(&upstream.completions_url)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body);
    for name in FORWARDED_REQUEST_HEADERS {
        for value in headers.get_all(name) {
            request = request.header(name, value);
        }
    }
    let sent = tokio::time::timeout(upstream.response_timeout, request.send()).await;
    let answer = match sent {
        Ok(Ok(answer)) => answer,
        Ok(Err(error)) => return Err(send_error(upstream, &error)),
        Err(_) => {
            return Err(ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "upstream_timeout",
                format!(
                "the upstream did not answer within {:.0} s (upstream.response_timeout_seconds)",
                upstream.response_timeout.as_secs_f64()
            ),
            ))
        }
    };
    let status = answer.status();
    if status.is_server_error() {
        // Bounded by the idle timeout per read; the quote is cut, the read is not: upstream
        // error bodies are small.
        let text = answer.text().await.unwrap_or_default();
        let quoted: String = text.chars().take(QUOTED_ERROR_CHARS).collect();
        tracing::warn!(status = status.as_u16(), "the upstream failed");
        return Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            "upstream_error",
            format!("the upstream answered {status}: {}", quoted.trim()),
        ));
    }
    let mut response = Response::builder().status(status.as_u16());
    for (name, value) in answer.headers() {
        if !UNFORWARDED_RESPONSE_HEADERS.contains(&name.as_str()) {
            response = response.header(name, value);
        }
    }
    response
        .body(Body::from_stream(answer.bytes_stream()))
        .map_err(|e| ApiError::internal(format!("cannot relay the upstream's answer: {e}")))
}

fn send_error(upstream: &Upstream, error: &reqwest::Error) -> ApiError {
    // reqwest's message names the URL but never the headers, so no key can leak into it.
    let mut reason = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        reason.push_str(": ");
        reason.push_str(&cause.to_string());
        source = cause.source();
    }
    tracing::warn!(%reason, "the upstream is unreachable");
    let (status, code) = if error.is_timeout() {
        (StatusCode::GATEWAY_TIMEOUT, "upstream_timeout")
    } else {
        (StatusCode::BAD_GATEWAY, "upstream_unreachable")
    };
    ApiError::new(
        status,
        code,
        format!(
            "cannot reach the upstream at {}: {reason}",
            upstream.completions_url
        ),
    )
}
