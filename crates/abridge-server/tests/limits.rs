//! The service cannot be starved (issue #21, items 2 and 3): idle and slow clients are cut off
//! while `/healthz` answers, an oversized declared body is refused before it is sent,
//! connections beyond the cap get `503`, a timed-out compression frees its worker, and valid
//! text never gets a 5xx. Raw TCP clients on 127.0.0.1, a few connections each.

mod common;

use std::time::{Duration, Instant};

use common::{client, long_text, TestServer};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads until the server closes the connection (or `limit` passes) and returns what came.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> Option<String> {
    let mut answer = Vec::new();
    match tokio::time::timeout(limit, stream.read_to_end(&mut answer)).await {
        Ok(_) => Some(String::from_utf8_lossy(&answer).into_owned()),
        Err(_) => None,
    }
}

async fn healthz_answers(server: &TestServer) {
    let response = client()
        .get(server.url("/healthz"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn idle_slow_and_oversized_clients_are_cut_off_while_healthz_answers() {
    let server = TestServer::with_toml(
        "[limits]\nheader_timeout_seconds = 1\nbody_timeout_seconds = 1\nmax_body_bytes = 1000",
    )
    .await;
    let started = Instant::now();
    // No bytes at all; half a request line; headers promising a body that never comes.
    let mut idle = TcpStream::connect(server.addr).await.unwrap();
    let mut partial_head = TcpStream::connect(server.addr).await.unwrap();
    partial_head
        .write_all(b"POST /v1/compress HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut slow_body = TcpStream::connect(server.addr).await.unwrap();
    slow_body
        .write_all(
            b"POST /v1/compress HTTP/1.1\r\nHost: x\r\nContent-Length: 900\r\n\r\n{\"context\"",
        )
        .await
        .unwrap();
    healthz_answers(&server).await;

    let limit = Duration::from_secs(10);
    assert_eq!(
        read_until_closed(&mut idle, limit).await.as_deref(),
        Some("")
    );
    let answer = read_until_closed(&mut partial_head, limit).await.unwrap();
    assert!(!answer.contains("200 OK"), "{answer}");
    let answer = read_until_closed(&mut slow_body, limit).await.unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 408") && answer.contains("body_timeout"),
        "{answer}"
    );
    assert!(started.elapsed() < Duration::from_secs(8));

    // A declared 50 MB body is refused from its headers alone.
    let mut huge = TcpStream::connect(server.addr).await.unwrap();
    huge.write_all(b"POST /v1/compress HTTP/1.1\r\nHost: x\r\nContent-Length: 50000000\r\n\r\n")
        .await
        .unwrap();
    let answer = read_until_closed(&mut huge, limit).await.unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 413") && answer.contains("body_too_large"),
        "{answer}"
    );
    healthz_answers(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn connections_beyond_the_cap_get_503_and_healthz_still_answers() {
    let server =
        TestServer::with_toml("[limits]\nmax_connections = 3\nheader_timeout_seconds = 30").await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(server.addr).await.unwrap());
    }
    // Give the server time to accept them, so the next one is over the cap.
    tokio::time::sleep(Duration::from_millis(200)).await;
    healthz_answers(&server).await;
    let response = client()
        .post(server.url("/v1/compress"))
        .body(json!({"context": "a b c"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "2");
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["code"], "overloaded");

    drop(held);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let response = client()
        .post(server.url("/v1/compress"))
        .body(json!({"context": "a b c"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    server.stop().await;
}

/// Sends `request` to a server with one worker and a 0.5 s deadline, expects `503 timeout`, and
/// requires the worker to be free within 5 s (before, an abandoned compression held it until it
/// finished: minutes at 1 MB).
async fn a_timed_out_compression_frees_its_worker(request: Value) {
    let server =
        TestServer::with_toml("[limits]\nworkers = 1\nrequest_timeout_seconds = 0.5").await;
    let response = client()
        .post(server.url("/v1/compress"))
        .body(request.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["code"], "timeout");
    // Before, the abandoned compression held the only worker until it finished (minutes at 1 MB).
    server.wait_idle(Duration::from_secs(5)).await;
    server.stop().await;
}

#[tokio::test]
async fn a_timed_out_compression_frees_its_worker_on_the_scoring_lm_path() {
    // The scorer checks its cancel flag between slices of 128 tokens.
    a_timed_out_compression_frees_its_worker(
        json!({"context": long_text(60_000), "rate": 0.5, "method": "selective-context"}),
    )
    .await;
}

#[tokio::test]
async fn a_timed_out_compression_frees_its_worker_with_the_default_method() {
    // auto's classifier and embedder check it between forward passes. About 100,000 MiniLM
    // tokens with a question: seconds of classification, more than the 5 s allowed, on an idle
    // machine.
    a_timed_out_compression_frees_its_worker(
        json!({"context": long_text(400_000), "question": "Who wrote it?", "rate": 0.5}),
    )
    .await;
}

#[tokio::test]
async fn text_the_tokenizer_used_to_refuse_is_not_a_server_error() {
    let server = TestServer::with_toml("").await;
    for (text, method) in [
        ("a \u{4} b", "selective-context"),
        ("\u{46fbb}", "llmlingua"),
        ("x \u{1d}\u{13} y \u{8ffff} z", "llmlingua"),
    ] {
        let response = client()
            .post(server.url("/v1/compress"))
            .body(json!({"context": text, "method": method}).to_string())
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, 200, "{text:?} with {method}: {body}");
    }
    server.stop().await;
}
