//! The server's configuration file (TOML). Every table and key is optional; an unknown key is an
//! error, so a typo does not silently fall back to a default.
//!
//! ```toml
//! [upstream]
//! url = "https://api.openai.com/v1"   # where /v1/chat/completions is forwarded
//! connect_timeout_seconds = 10
//! response_timeout_seconds = 300       # until the upstream's response headers arrive
//! idle_timeout_seconds = 120           # between two chunks of a (streamed) response body
//!
//! [proxy]                              # which chat messages are compressed
//! roles = ["user", "tool"]
//! min_tokens = 200                     # shorter contents are left alone
//! compress_last_user = false           # the question itself is never compressed by default
//!
//! [compress]                           # default options of every compression
//! method = "auto"
//! rate = 0.5
//!
//! [models]
//! classifier = "/models/llmlingua-2-xlm-roberta-large-meetingbank"   # for "method": "llmlingua2"
//! rewriter = "/models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"     # for "method": "rewrite"
//!
//! [limits]
//! max_body_bytes = 8388608
//! request_timeout_seconds = 120        # queueing and compressing, per request
//! workers = 0                          # concurrent compressions; 0 = one per core
//! max_queue = 256                      # compressions waiting for a worker before 503
//! header_timeout_seconds = 10          # to send a request's headers (also idle keep-alive)
//! body_timeout_seconds = 60            # to send a request's body, else 408
//! max_connections = 512                # open connections; beyond them 503 (/healthz answers)
//! shutdown_grace_seconds = 30          # for open requests to finish after SIGTERM
//! ```

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use abridge_core::CompressionOptions;

use crate::Error;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub upstream: UpstreamConfig,
    pub proxy: ProxyConfig,
    /// Defaults under every request's own options.
    pub compress: CompressionOptions,
    pub models: ModelsConfig,
    pub limits: Limits,
}

/// Models besides the scoring LM, abridge-fast and MiniLM (which `abridge serve` loads when
/// installed).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelsConfig {
    /// A *ForTokenClassification folder (an LLMLingua-2 checkpoint) for `"method": "llmlingua2"`.
    pub classifier: Option<std::path::PathBuf>,
    /// A chat GGUF (qwen2/llama, ChatML) for `"method": "rewrite"`, e.g. the
    /// Qwen2.5-Coder-0.5B-Instruct that scripts/fetch-evaluator.py installs.
    pub rewriter: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UpstreamConfig {
    /// Base URL of an OpenAI-compatible API, e.g. `https://api.openai.com/v1`; chat requests go
    /// to `{url}/chat/completions`.
    pub url: Option<String>,
    pub connect_timeout_seconds: f64,
    pub response_timeout_seconds: f64,
    pub idle_timeout_seconds: f64,
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        Self {
            url: None,
            connect_timeout_seconds: 10.0,
            // Non-streamed completions of long answers take minutes.
            response_timeout_seconds: 300.0,
            idle_timeout_seconds: 120.0,
        }
    }
}

/// Which parts of a chat request the proxy compresses.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProxyConfig {
    /// Roles whose message contents are compressed (`tool` results and long `user` documents by
    /// default; `system` prompts are usually short and carefully worded).
    pub roles: Vec<String>,
    /// Contents shorter than this, in target-LLM tokens, are forwarded as they are: compressing
    /// them saves little and costs a model pass.
    pub min_tokens: usize,
    /// Also compress the last user message (the question the LLM is asked to answer).
    pub compress_last_user: bool,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        Self {
            roles: vec!["user".into(), "tool".into()],
            min_tokens: 200,
            compress_last_user: false,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    pub max_body_bytes: usize,
    pub request_timeout_seconds: f64,
    /// Compressions that run at once; 0 means one per core.
    pub workers: usize,
    /// Compressions that may wait for a worker; beyond that requests get `503` + `Retry-After`.
    pub max_queue: usize,
    /// Time to send a request's headers, from connecting or from the previous response on a
    /// kept-alive connection; the connection is closed after it.
    pub header_timeout_seconds: f64,
    /// Time to send a request's body once its headers are in; `408` after it.
    pub body_timeout_seconds: f64,
    /// Connections open at once. Keep it under the process's file-descriptor limit (`ulimit
    /// -n`); a few more are served `503` (and `/healthz`) beyond it, the rest closed at once.
    pub max_connections: usize,
    /// After SIGTERM or Ctrl-C, time for open requests to finish; then running compressions are
    /// cancelled and the server exits.
    pub shutdown_grace_seconds: f64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 8 << 20,
            request_timeout_seconds: 120.0,
            workers: 0,
            max_queue: 256,
            header_timeout_seconds: 10.0,
            // 8 MB (the default body limit) in 60 s needs about 1.1 Mbit/s.
            body_timeout_seconds: 60.0,
            // Under the usual soft file-descriptor limit of 1024, with room for the overflow.
            max_connections: 512,
            shutdown_grace_seconds: 30.0,
        }
    }
}

impl Limits {
    pub fn workers(&self) -> usize {
        if self.workers > 0 {
            self.workers
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        }
    }

    pub fn header_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.header_timeout_seconds)
    }

    pub fn body_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.body_timeout_seconds)
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs_f64(self.shutdown_grace_seconds)
    }
}

impl Config {
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::ReadConfig {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text).map_err(|reason| Error::InvalidConfig {
            path: path.to_path_buf(),
            reason,
        })
    }

    /// Parses and checks a configuration; the error says what to change.
    pub fn parse(text: &str) -> Result<Self, String> {
        let config: Self = toml::from_str(text).map_err(|e| e.to_string())?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), String> {
        let seconds = [
            (
                "upstream.connect_timeout_seconds",
                self.upstream.connect_timeout_seconds,
            ),
            (
                "upstream.response_timeout_seconds",
                self.upstream.response_timeout_seconds,
            ),
            (
                "upstream.idle_timeout_seconds",
                self.upstream.idle_timeout_seconds,
            ),
            (
                "limits.request_timeout_seconds",
                self.limits.request_timeout_seconds,
            ),
            (
                "limits.header_timeout_seconds",
                self.limits.header_timeout_seconds,
            ),
            (
                "limits.body_timeout_seconds",
                self.limits.body_timeout_seconds,
            ),
            (
                "limits.shutdown_grace_seconds",
                self.limits.shutdown_grace_seconds,
            ),
        ];
        for (name, value) in seconds {
            // Duration::from_secs_f64 panics on these.
            if !(value.is_finite() && value > 0.0 && value < 1e9) {
                return Err(format!(
                    "{name} must be a positive number of seconds, got {value}"
                ));
            }
        }
        if self.limits.max_body_bytes == 0 {
            return Err("limits.max_body_bytes must be at least 1".into());
        }
        if self.limits.max_connections == 0 {
            return Err("limits.max_connections must be at least 1".into());
        }
        if let Some(url) = &self.upstream.url {
            check_upstream_url(url)?;
        }
        // Build a request from the defaults alone, so bad defaults fail at startup rather than
        // on every request.
        crate::options::plan(
            &self.compress,
            String::new(),
            vec!["x".into()],
            String::new(),
        )
        .map_err(|e| format!("[compress]: {}", e.message))?;
        Ok(())
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.limits.request_timeout_seconds)
    }
}

/// An upstream base URL must be absolute http(s), e.g. `https://api.openai.com/v1`.
pub fn check_upstream_url(url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| {
        format!("upstream url `{url}` is not a URL ({e}): pass e.g. https://api.openai.com/v1")
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!(
            "upstream url `{url}` must be http or https, e.g. https://api.openai.com/v1"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_file_gives_the_defaults() {
        let config = Config::parse("").unwrap();
        assert_eq!(config.proxy.roles, ["user", "tool"]);
        assert_eq!(config.proxy.min_tokens, 200);
        assert!(!config.proxy.compress_last_user);
        assert_eq!(config.limits.max_body_bytes, 8 << 20);
        assert!(config.upstream.url.is_none());
        assert!(config.limits.workers() >= 1);
    }

    #[test]
    fn every_table_is_read() {
        let config = Config::parse(
            r#"
            [upstream]
            url = "http://127.0.0.1:9/v1"
            idle_timeout_seconds = 5
            [proxy]
            roles = ["tool"]
            min_tokens = 0
            compress_last_user = true
            [compress]
            method = "selective-context"
            rate = 0.3
            [limits]
            max_body_bytes = 1000
            workers = 3
            max_queue = 0
            "#,
        )
        .unwrap();
        assert_eq!(
            config.upstream.url.as_deref(),
            Some("http://127.0.0.1:9/v1")
        );
        assert_eq!(config.upstream.idle_timeout_seconds, 5.0);
        assert_eq!(config.proxy.roles, ["tool"]);
        assert!(config.proxy.compress_last_user);
        assert_eq!(config.compress.rate, Some(0.3));
        assert_eq!(config.limits.workers(), 3);
        assert_eq!(config.limits.max_queue, 0);
    }

    #[test]
    fn mistakes_are_named() {
        let error = Config::parse("[limits]\nmax_body = 3").unwrap_err();
        assert!(error.contains("unknown field `max_body`"), "{error}");
        let error = Config::parse("[compress]\nrate = 2.0").unwrap_err();
        assert!(
            error.contains("[compress]") && error.contains("(0, 1]"),
            "{error}"
        );
        let error = Config::parse("[compress]\nmethod = \"zip\"").unwrap_err();
        assert!(error.contains("`zip` is not a method"), "{error}");
        let error = Config::parse("[upstream]\nurl = \"ftp://x\"").unwrap_err();
        assert!(error.contains("http or https"), "{error}");
        let error = Config::parse("[limits]\nrequest_timeout_seconds = -1").unwrap_err();
        assert!(error.contains("positive"), "{error}");
    }
}
