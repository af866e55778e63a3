//! `POST /v1/compress`: one compression, as JSON.
//!
//! The body is LLMLingua's call flattened: `instruction`, `context` (a string or a list of
//! strings; `contexts` is accepted too), `question`, `label_map`, and every
//! [`CompressionOptions`] field (`method` defaults to `auto`). The answer is [`abridge_core::Compressed`]: text, counts, ratio,
//! rate and timings; with `"label_map": true` also `source` and its `spans`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::Json;
use serde_json::{Map, Value};

use abridge_core::CompressionOptions;

use crate::options::{counter, plan};
use crate::{from_json, json_object, json_type, ApiError, AppState};

pub async fn handle(
    State(state): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let mut fields = json_object(body)?;
    let instruction = take_string(&mut fields, "instruction")?;
    let question = take_string(&mut fields, "question")?;
    let contexts = match (fields.remove("context"), fields.remove("contexts")) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid("give `context` or `contexts`, not both"))
        }
        (Some(value), None) | (None, Some(value)) => texts(value)?,
        (None, None) => {
            return Err(ApiError::invalid(
                "nothing to compress: give `context`, a string or a list of strings",
            ))
        }
    };
    let label_map = match fields.remove("label_map") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => b,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "label_map must be true or false, got {}",
                json_type(&other)
            )))
        }
    };
    let options: CompressionOptions = from_json(Value::Object(fields), "")?;
    let options = options.over(&state.config.compress);
    let plan = plan(&options, instruction, contexts, question)?;
    let counter = Arc::new(counter(&options)?);
    let job = state.compression(plan, counter)?;
    let result = state.run_blocking(state.deadline(), job).await??;
    state
        .metrics
        .record_compression(result.origin_tokens, result.compressed_tokens);
    tracing::debug!(
        origin_tokens = result.origin_tokens,
        compressed_tokens = result.compressed_tokens,
        seconds = result.timings.total_seconds,
        "compressed"
    );
    let mut json = serde_json::to_value(&result)
        .map_err(|e| ApiError::internal(format!("cannot encode the result: {e}")))?;
    if !label_map {
        if let Value::Object(map) = &mut json {
            map.remove("source");
            map.remove("spans");
        }
    }
    Ok(Json(json))
}

fn take_string(fields: &mut Map<String, Value>, key: &str) -> Result<String, ApiError> {
    match fields.remove(key) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(ApiError::invalid(format!(
            "{key} must be a string, got {}",
            json_type(&other)
        ))),
    }
}

/// `context`: one string, or a list of strings (LLMLingua's demonstrations).
fn texts(value: Value) -> Result<Vec<String>, ApiError> {
    let wrong = |what: &Value| {
        ApiError::invalid(format!(
            "context must be a string or a list of strings, got {}",
            json_type(what)
        ))
    };
    match value {
        Value::String(s) => Ok(vec![s]),
        Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                Value::String(s) => Ok(s),
                other => Err(wrong(&other)),
            })
            .collect(),
        other => Err(wrong(&other)),
    }
}
