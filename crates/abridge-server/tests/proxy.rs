//! `/v1/chat/completions` against a fake upstream (a local axum server that records what it
//! receives), with the real default model compressing.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use abridge_core::TokenCounter;
use abridge_models::{TargetTokenizer, TiktokenCounter};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use common::{client, TestServer, SAMPLE};
use serde_json::{json, Value};
use tokio::sync::Notify;

/// What the fake upstream answers.
#[derive(Clone)]
enum Reply {
    /// This body, as `application/json`.
    Json(&'static str),
    /// These chunks, as `text/event-stream`; the last one only after `gate` is notified, so a
    /// test can see the first ones arrive before the upstream has finished.
    Stream {
        chunks: Vec<&'static [u8]>,
        gate: Arc<Notify>,
    },
    Status(StatusCode, &'static str),
    /// Answers after this long.
    Slow(Duration),
}

#[derive(Clone)]
struct Fake {
    reply: Reply,
    received: Arc<Mutex<Vec<(HeaderMap, Value)>>>,
}

async fn fake_completions(State(fake): State<Fake>, headers: HeaderMap, body: Bytes) -> Response {
    let body: Value = serde_json::from_slice(&body).expect("the proxy forwards JSON");
    fake.received.lock().unwrap().push((headers, body));
    match fake.reply {
        Reply::Json(body) => ([("content-type", "application/json")], body).into_response(),
        Reply::Stream { chunks, gate } => {
            let last = chunks.len() - 1;
            let stream = futures_util::stream::unfold(0, move |i| {
                let chunks = chunks.clone();
                let gate = Arc::clone(&gate);
                async move {
                    if i > last {
                        return None;
                    }
                    if i == last {
                        gate.notified().await;
                    }
                    Some((
                        Ok::<_, std::io::Error>(Bytes::from_static(chunks[i])),
                        i + 1,
                    ))
                }
            });
            (
                [
                    ("content-type", "text/event-stream"),
                    ("x-request-id", "req-42"),
                ],
                Body::from_stream(stream),
            )
                .into_response()
        }
        Reply::Status(status, body) => (status, body).into_response(),
        Reply::Slow(delay) => {
            tokio::time::sleep(delay).await;
            axum::Json(json!({})).into_response()
        }
    }
}

/// Starts a fake upstream; returns its base URL (as `--upstream` takes it) and its record.
async fn fake_upstream(reply: Reply) -> (String, Arc<Mutex<Vec<(HeaderMap, Value)>>>) {
    let received = Arc::new(Mutex::new(Vec::new()));
    let app = Router::new()
        .route("/v1/chat/completions", post(fake_completions))
        .with_state(Fake {
            reply,
            received: Arc::clone(&received),
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/v1"), received)
}

/// A proxy to `upstream`; `extra_toml` continues its `[upstream]` table.
async fn proxy_with(upstream: &str, extra_toml: &str) -> TestServer {
    TestServer::with_toml(&format!(
        "[proxy]\nmin_tokens = 50\n[upstream]\nurl = \"{upstream}\"\n{extra_toml}"
    ))
    .await
}

fn cl100k(text: &str) -> usize {
    TiktokenCounter::new(TargetTokenizer::Cl100kBase).count(text)
}

const ANSWER: &str = r#"{"id":"chatcmpl-1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"About Vellmouth."},"finish_reason":"stop"}]}"#;

#[tokio::test]
async fn compresses_the_configured_messages_and_leaves_the_question_alone() {
    let (upstream, received) = fake_upstream(Reply::Json(ANSWER)).await;
    let server = proxy_with(&upstream, "[compress]\nrate = 0.4").await;
    let question = format!("{SAMPLE}\nSo what should the council do?");
    let request = json!({
        "model": "gpt-4o-mini",
        "temperature": 0.2,
        "messages": [
            {"role": "system", "content": SAMPLE},
            {"role": "user", "content": SAMPLE},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "t1", "type": "function", "function": {"name": "search", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "t1", "content": [{"type": "text", "text": SAMPLE}, {"type": "text", "text": "short note"}]},
            {"role": "user", "content": question},
        ],
    });
    let response = client()
        .post(server.url("/v1/chat/completions"))
        .json(&request)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(response.bytes().await.unwrap(), ANSWER.as_bytes());

    let received = received.lock().unwrap();
    assert_eq!(received.len(), 1);
    let sent = &received[0].1;
    let messages = sent["messages"].as_array().unwrap();
    // Not a configured role, and not long enough: as they were.
    assert_eq!(messages[0], request["messages"][0]);
    assert_eq!(messages[2], request["messages"][2]);
    assert_eq!(messages[3]["content"][1]["text"], "short note");
    // The last user message is the question: never compressed by default, however long.
    assert_eq!(messages[4], request["messages"][4]);
    // The user document and the tool result are compressed to the configured rate.
    let origin = cl100k(SAMPLE);
    for text in [&messages[1]["content"], &messages[3]["content"][0]["text"]] {
        let tokens = cl100k(text.as_str().unwrap());
        let target = (origin as f64 * 0.4).round() as usize;
        assert!(
            tokens <= target + 2 && tokens + 10 >= target,
            "{tokens} of {origin}: {text}"
        );
    }
    assert_eq!(messages[3]["tool_call_id"], "t1");
    // Everything else of the request goes upstream as it came.
    assert_eq!(sent["model"], "gpt-4o-mini");
    assert_eq!(sent["temperature"], 0.2);

    let count = |name: &str| headers[name].to_str().unwrap().parse::<usize>().unwrap();
    assert_eq!(count("x-abridge-compressed-messages"), 2);
    let all: usize = [SAMPLE, SAMPLE, SAMPLE, "short note", question.as_str()]
        .iter()
        .map(|text| cl100k(text))
        .sum();
    assert_eq!(count("x-abridge-origin-tokens"), all);
    let saved = all - count("x-abridge-compressed-tokens");
    assert!(saved > origin, "saved {saved}");
    let metrics = server.state.metrics.render(&server.state.pool);
    assert!(
        metrics.contains("abridge_compressions_total 2"),
        "{metrics}"
    );
}

#[tokio::test]
async fn the_abridge_field_chooses_what_is_compressed_and_is_not_forwarded() {
    let (upstream, received) = fake_upstream(Reply::Json(r#"{"ok": true}"#)).await;
    let server = proxy_with(&upstream, "").await;
    let messages = json!([
        {"role": "user", "content": SAMPLE},
        {"role": "assistant", "content": "Noted."},
        {"role": "user", "content": SAMPLE},
    ]);
    let send = |abridge: Value| {
        let body = json!({"model": "m", "messages": messages, "abridge": abridge});
        let url = server.url("/v1/chat/completions");
        async move { client().post(url).json(&body).send().await.unwrap() }
    };

    // The last user message, asked for by index, at the request's own rate.
    let response =
        send(json!({"messages": [2], "compress": {"rate": 0.3, "method": "selective-context"}}))
            .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-abridge-compressed-messages"], "1");
    // Off: forwarded untouched.
    let response = send(json!({"enabled": false})).await;
    assert_eq!(response.headers()["x-abridge-compressed-messages"], "0");
    // compress_last_user with the configured roles: both user messages.
    let response = send(json!({"compress_last_user": true, "min_tokens": 10})).await;
    assert_eq!(response.headers()["x-abridge-compressed-messages"], "2");

    // Bad extension options are the client's error, found before anything is forwarded.
    for (abridge, message) in [
        (json!({"compress": {"rate": 3}}), "`rate` must be in (0, 1]"),
        (json!({"messages": [7]}), "no message 7"),
        (json!({"roles": "user"}), "abridge.roles: invalid type"),
        (
            json!({"compress": {"method": "zip"}}),
            "`zip` is not a method",
        ),
        (json!({"rate": 0.5}), "unknown field `rate`"),
    ] {
        let response = send(abridge.clone()).await;
        assert_eq!(response.status(), 400, "{abridge}");
        let error: Value = response.json().await.unwrap();
        let text = error["error"]["message"].as_str().unwrap();
        assert!(text.contains(message), "{abridge}: {text}");
    }
    for body in [
        json!({"model": "m"}),
        json!({"messages": [{"content": "no role"}]}),
    ] {
        let response = client()
            .post(server.url("/v1/chat/completions"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{body}");
    }

    let received = received.lock().unwrap();
    assert_eq!(received.len(), 3);
    for (_, body) in received.iter() {
        assert!(body.get("abridge").is_none());
        assert_eq!(body["messages"][1], messages[1]);
    }
    let sample_tokens = cl100k(SAMPLE);
    let tokens = |body: &Value, i: usize| cl100k(body["messages"][i]["content"].as_str().unwrap());
    assert_eq!(received[0].1["messages"][0], messages[0]);
    let third = tokens(&received[0].1, 2);
    assert!(third < sample_tokens * 4 / 10, "{third} of {sample_tokens}");
    assert_eq!(received[1].1["messages"], messages);
    assert!(tokens(&received[2].1, 0) < sample_tokens * 6 / 10);
    assert!(tokens(&received[2].1, 2) < sample_tokens * 6 / 10);
}

#[tokio::test]
async fn streams_pass_through_byte_exact_with_the_credentials_forwarded() {
    let chunks: Vec<&'static [u8]> = vec![
        b": keep-alive\r\n\r\n",
        b"data: {\"id\":\"c1\",\"choices\":[{\"delta\":{\"content\":\"Caf\xc3",
        b"\xa9 \xf0\x9f\x8c\x8a\"}}]}\n\ndata: {\"id\":\"c1\",\"choices\":[{\"delta\":{\"content\":\" ok\"}}]}\n",
        b"\ndata: ",
        b"[DONE]\n\n",
    ];
    let gate = Arc::new(Notify::new());
    let (upstream, received) = fake_upstream(Reply::Stream {
        chunks: chunks.clone(),
        gate: Arc::clone(&gate),
    })
    .await;
    let server = proxy_with(&upstream, "").await;
    let mut response = client()
        .post(server.url("/v1/chat/completions"))
        .header("authorization", "Bearer sk-test-secret")
        .header("openai-organization", "org-1")
        .header("cookie", "session=private")
        .header("accept-encoding", "gzip")
        .json(&json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": SAMPLE}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    assert_eq!(response.headers()["x-request-id"], "req-42");
    assert_eq!(response.headers()["x-abridge-compressed-messages"], "0");

    // Everything but the last chunk arrives while the upstream is still holding that one: the
    // proxy streams rather than buffers.
    let before_last: Vec<u8> = chunks[..chunks.len() - 1].concat();
    let mut got = Vec::new();
    while got.len() < before_last.len() {
        let chunk = tokio::time::timeout(Duration::from_secs(10), response.chunk())
            .await
            .expect("the first chunks arrive before the stream ends")
            .unwrap()
            .expect("more chunks");
        got.extend_from_slice(&chunk);
    }
    assert_eq!(got, before_last);
    gate.notify_one();
    while let Some(chunk) = response.chunk().await.unwrap() {
        got.extend_from_slice(&chunk);
    }
    assert_eq!(got, chunks.concat());

    let received = received.lock().unwrap();
    let headers = &received[0].0;
    assert_eq!(headers["authorization"], "Bearer sk-test-secret");
    assert_eq!(headers["openai-organization"], "org-1");
    assert!(headers.get("cookie").is_none());
    assert!(headers.get("accept-encoding").is_none());
    assert_eq!(received[0].1["stream"], true);
}

async fn assert_error(response: reqwest::Response, code: &str, contains: &str) {
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["error"]["code"], code, "{answer}");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(message.contains(contains), "{message}");
}

#[tokio::test]
async fn upstream_failures_are_clean_json_errors() {
    let body = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
    let send = |server: &TestServer| {
        let url = server.url("/v1/chat/completions");
        let body = body.clone();
        async move { client().post(url).json(&body).send().await.unwrap() }
    };
    let (upstream, _) = fake_upstream(Reply::Status(
        StatusCode::INTERNAL_SERVER_ERROR,
        "model overloaded",
    ))
    .await;
    let server = proxy_with(&upstream, "").await;
    let response = send(&server).await;
    assert_eq!(response.status(), 502);
    assert_error(
        response,
        "upstream_error",
        "500 Internal Server Error: model overloaded",
    )
    .await;

    // Nothing listens there any more.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let refused = format!("http://{}/v1", closed.local_addr().unwrap());
    drop(closed);
    let server = proxy_with(&refused, "").await;
    let response = send(&server).await;
    assert_eq!(response.status(), 502);
    assert_error(
        response,
        "upstream_unreachable",
        "cannot reach the upstream",
    )
    .await;

    let (upstream, _) = fake_upstream(Reply::Slow(Duration::from_secs(5))).await;
    let server = proxy_with(&upstream, "response_timeout_seconds = 0.5\n").await;
    let response = send(&server).await;
    assert_eq!(response.status(), 504);
    assert_error(response, "upstream_timeout", "did not answer within").await;

    // The upstream's verdict on the client's request (a bad key) is passed through as it is.
    let unauthorized =
        r#"{"error":{"message":"Incorrect API key provided","code":"invalid_api_key"}}"#;
    let (upstream, _) = fake_upstream(Reply::Status(StatusCode::UNAUTHORIZED, unauthorized)).await;
    let server = proxy_with(&upstream, "").await;
    let response = send(&server).await;
    assert_eq!(response.status(), 401);
    assert_eq!(response.bytes().await.unwrap(), unauthorized.as_bytes());
}
