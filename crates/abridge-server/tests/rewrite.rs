//! `"method": "rewrite"` on the service with stand-in generators: a clear 503 without one, the
//! result with one, and a timed-out request that stops its generation.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use abridge_core::{BoxError, Generation, Generator};
use abridge_server::{AppState, Config};
use common::{client, embedder, fast, model, TestServer, SAMPLE};
use serde_json::{json, Value};

/// Writes the document's first sentence back, one word at a time, `pause` after each word and
/// then (when `endless`) goes on writing "More." until stopped.
struct Echo {
    pause: Duration,
    endless: bool,
    written: AtomicUsize,
}

impl Generator for Echo {
    fn generate(
        &self,
        request: &Generation,
        on_token: &mut dyn FnMut(usize) -> Result<(), BoxError>,
    ) -> Result<String, BoxError> {
        let document = request.user.split("Document:\n").nth(1).unwrap_or("");
        let first = document.split(". ").next().unwrap_or("").to_string() + ".";
        let mut words: Vec<String> = first.split_whitespace().map(String::from).collect();
        if self.endless {
            words.extend(std::iter::repeat_n("More.".to_string(), 100_000));
        }
        let mut out = Vec::new();
        for (i, word) in words.into_iter().enumerate() {
            std::thread::sleep(self.pause);
            self.written.fetch_add(1, Ordering::SeqCst);
            on_token(i + 1)?;
            out.push(word);
        }
        Ok(out.join(" "))
    }

    fn name(&self) -> &str {
        "echo"
    }
}

async fn server(toml: &str, generator: Option<Arc<Echo>>) -> TestServer {
    let mut state = AppState::new(Config::parse(toml).unwrap(), model())
        .unwrap()
        .with_embedder(embedder())
        .with_fast(fast());
    if let Some(generator) = generator {
        state = state.with_generator(generator);
    }
    TestServer::start_state(state).await
}

async fn post(server: &TestServer, body: Value) -> (u16, Value) {
    let response = client()
        .post(server.url("/v1/compress"))
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn without_a_generator_the_answer_says_how_to_configure_one() {
    let server = server("", None).await;
    let (status, body) = post(&server, json!({"context": SAMPLE, "method": "rewrite"})).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "model_unavailable");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("[models] rewriter"), "{message}");
    server.stop().await;
}

#[tokio::test]
async fn a_generator_rewrites_on_the_pool() {
    let echo = Arc::new(Echo {
        pause: Duration::ZERO,
        endless: false,
        written: AtomicUsize::new(0),
    });
    let server = server("", Some(Arc::clone(&echo))).await;
    let (status, body) = post(
        &server,
        json!({"context": SAMPLE, "method": "rewrite", "question": "When did the railway arrive?", "target_token": 60}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["compressed_tokens"].as_u64().unwrap() <= 60, "{body}");
    assert_eq!(body["rewrite"]["generator"], "echo");
    // Echo wrote the extract's first sentence back, which the guard lets through.
    let rewritten = body["text"].as_str().unwrap().split("\n\n").next().unwrap();
    assert!(!rewritten.is_empty());
    let extract = body["rewrite"]["extract"].as_str().unwrap();
    assert!(
        rewritten.split_whitespace().all(|w| extract.contains(w)),
        "{body}"
    );
    assert!(echo.written.load(Ordering::SeqCst) > 0);
    server.stop().await;
}

#[tokio::test]
async fn a_timed_out_rewrite_stops_generating() {
    let echo = Arc::new(Echo {
        pause: Duration::from_millis(20),
        endless: true,
        written: AtomicUsize::new(0),
    });
    let server = server(
        "[limits]\nworkers = 1\nrequest_timeout_seconds = 1",
        Some(Arc::clone(&echo)),
    )
    .await;
    let (status, body) = post(
        &server,
        json!({"context": SAMPLE, "method": "rewrite", "rate": 0.9}),
    )
    .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "timeout");
    server.wait_idle(Duration::from_secs(5)).await;
    let written = echo.written.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        echo.written.load(Ordering::SeqCst),
        written,
        "it went on writing"
    );
    server.stop().await;
}
