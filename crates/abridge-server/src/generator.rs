//! The `rewrite` method's generator on any OpenAI-compatible endpoint: one non-streaming
//! `POST {base}/chat/completions` (the base as for the proxy's upstream, e.g.
//! `https://api.openai.com/v1`), greedy (`temperature` 0), `max_tokens` the rewrite's bound.
//!
//! The API key comes from the caller (the CLI reads it from an environment variable) and is only
//! ever sent as the `Authorization` header: no message or log line contains it.

use std::time::Duration;

use abridge_core::{BoxError, Generation, Generator};
use serde_json::{json, Value};

use crate::config::check_upstream_url;
use crate::Error;

/// How much of an error body is quoted in the message.
const QUOTED_ERROR_CHARS: usize = 300;

/// A chat-completions endpoint as a [`Generator`]. It blocks on its own single-threaded runtime,
/// so call it from a thread that is not running async tasks (the CLI, a worker thread).
pub struct EndpointGenerator {
    completions_url: String,
    model: String,
    api_key: Option<String>,
    client: reqwest::Client,
    runtime: tokio::runtime::Runtime,
}

impl EndpointGenerator {
    /// `base`: the API's base URL (`…/v1`); `model`: the model name the endpoint serves;
    /// `timeout`: the most one rewrite may take.
    pub fn new(
        base: &str,
        model: &str,
        api_key: Option<String>,
        timeout: Duration,
    ) -> Result<Self, Error> {
        check_upstream_url(base).map_err(Error::InvalidUpstream)?;
        let client = reqwest::Client::builder()
            .timeout(timeout)
            // Redirects would resend the key to another host.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(Error::Client)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Runtime(e.to_string()))?;
        Ok(Self {
            completions_url: format!("{}/chat/completions", base.trim_end_matches('/')),
            model: model.to_string(),
            api_key,
            client,
            runtime,
        })
    }

    async fn complete(&self, request: &Generation<'_>) -> Result<Value, BoxError> {
        let body = json!({
            "model": self.model,
            "messages": [
                {"role": "system", "content": request.system},
                {"role": "user", "content": request.user},
            ],
            "max_tokens": request.max_new_tokens,
            "temperature": 0,
        });
        let mut post = self
            .client
            .post(&self.completions_url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string());
        if let Some(key) = &self.api_key {
            post = post.bearer_auth(key);
        }
        // reqwest's messages name the URL, never the headers, so the key cannot leak into them.
        let response = post.send().await.map_err(|e| {
            format!(
                "cannot reach the rewrite endpoint {}: {e}",
                self.completions_url
            )
        })?;
        let status = response.status();
        let text = response.text().await.map_err(|e| {
            format!(
                "the rewrite endpoint {} broke off its answer: {e}",
                self.completions_url
            )
        })?;
        if !status.is_success() {
            let quoted: String = text.chars().take(QUOTED_ERROR_CHARS).collect();
            let hint = match status.as_u16() {
                401 | 403 => " (check the API key: the CLI reads it from ABRIDGE_REWRITE_API_KEY)",
                404 => " (check the base URL, e.g. https://api.openai.com/v1, and the model name)",
                _ => "",
            };
            return Err(format!(
                "the rewrite endpoint {} answered {status}{hint}: {quoted}",
                self.completions_url
            )
            .into());
        }
        serde_json::from_str(&text).map_err(|e| {
            format!(
                "the rewrite endpoint {} did not answer JSON ({e})",
                self.completions_url
            )
            .into()
        })
    }
}

impl Generator for EndpointGenerator {
    fn generate(
        &self,
        request: &Generation,
        on_token: &mut dyn FnMut(usize) -> Result<(), BoxError>,
    ) -> Result<String, BoxError> {
        // A caller that has already given up stops here, before the request is sent.
        on_token(0)?;
        let answer = self.runtime.block_on(self.complete(request))?;
        let content = answer["choices"][0]["message"]["content"]
            .as_str()
            .ok_or_else(|| {
                format!(
                    "the rewrite endpoint {} answered without choices[0].message.content",
                    self.completions_url
                )
            })?;
        if let Some(tokens) = answer["usage"]["completion_tokens"].as_u64() {
            on_token(tokens as usize)?;
        }
        Ok(content.trim().to_string())
    }

    fn name(&self) -> &str {
        &self.model
    }
}
