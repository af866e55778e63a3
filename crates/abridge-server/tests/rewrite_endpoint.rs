//! The `rewrite` method's endpoint generator against a fake OpenAI-compatible upstream (a local
//! axum server that records what it receives): the request it sends, the reply it reads, and
//! errors that name the fix without the key.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use abridge_core::{BoxError, Generation, Generator};
use abridge_server::generator::EndpointGenerator;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::Value;

#[derive(Clone)]
struct Fake {
    status: StatusCode,
    body: &'static str,
    received: Arc<Mutex<Vec<(HeaderMap, Value)>>>,
}

async fn completions(State(fake): State<Fake>, headers: HeaderMap, body: Bytes) -> Response {
    let body: Value = serde_json::from_slice(&body).expect("the generator sends JSON");
    fake.received.lock().unwrap().push((headers, body));
    (
        fake.status,
        [("content-type", "application/json")],
        fake.body,
    )
        .into_response()
}

/// Serves `fake` on a loopback port from a thread of its own (the generator blocks on its own
/// runtime, so it must not be called from inside the fake's); returns the API's base URL.
fn serve(fake: Fake) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            let app = Router::new()
                .route("/v1/chat/completions", post(completions))
                .with_state(fake);
            axum::serve(listener, app).await.unwrap();
        });
    });
    format!("http://{}/v1", rx.recv().unwrap())
}

fn fake(status: StatusCode, body: &'static str) -> Fake {
    Fake {
        status,
        body,
        received: Arc::default(),
    }
}

const REQUEST: Generation = Generation {
    system: "Shorten documents.",
    user: "Document:\nThe quay was built in 1954.\n\nSummarise the document.",
    max_new_tokens: 40,
};

fn generate(generator: &EndpointGenerator, seen: &mut Vec<usize>) -> Result<String, BoxError> {
    generator.generate(&REQUEST, &mut |n| {
        seen.push(n);
        Ok(())
    })
}

#[test]
fn the_request_is_a_greedy_bounded_chat_completion_with_the_key_as_bearer() {
    let fake = fake(
        StatusCode::OK,
        r#"{"choices": [{"message": {"role": "assistant", "content": " The quay dates from 1954. "}}],
            "usage": {"prompt_tokens": 30, "completion_tokens": 7}}"#,
    );
    let received = Arc::clone(&fake.received);
    let base = serve(fake);
    let generator = EndpointGenerator::new(
        &format!("{base}/"),
        "tiny-chat",
        Some("sk-secret".into()),
        Duration::from_secs(10),
    )
    .unwrap();
    assert_eq!(generator.name(), "tiny-chat");
    let mut seen = Vec::new();
    assert_eq!(
        generate(&generator, &mut seen).unwrap(),
        "The quay dates from 1954."
    );
    // Once before sending (a cancelled caller stops there), once with the usage.
    assert_eq!(seen, [0, 7]);
    let received = received.lock().unwrap();
    let (headers, body) = &received[0];
    assert_eq!(headers["authorization"], "Bearer sk-secret");
    assert_eq!(body["model"], "tiny-chat");
    assert_eq!(body["max_tokens"], 40);
    assert_eq!(body["temperature"], 0);
    assert_eq!(body["messages"][0]["role"], "system");
    assert_eq!(body["messages"][0]["content"], REQUEST.system);
    assert_eq!(body["messages"][1]["role"], "user");
    assert_eq!(body["messages"][1]["content"], REQUEST.user);
}

#[test]
fn errors_name_the_fix_and_never_the_key() {
    let base = serve(fake(
        StatusCode::UNAUTHORIZED,
        r#"{"error": {"message": "Incorrect API key provided"}}"#,
    ));
    let generator = EndpointGenerator::new(
        &base,
        "m",
        Some("sk-secret".into()),
        Duration::from_secs(10),
    )
    .unwrap();
    let error = generate(&generator, &mut Vec::new())
        .unwrap_err()
        .to_string();
    assert!(error.contains("401"), "{error}");
    assert!(error.contains("ABRIDGE_REWRITE_API_KEY"), "{error}");
    assert!(!error.contains("sk-secret"), "{error}");

    let base = serve(fake(StatusCode::OK, r#"{"choices": []}"#));
    let generator = EndpointGenerator::new(&base, "m", None, Duration::from_secs(10)).unwrap();
    let error = generate(&generator, &mut Vec::new())
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("without choices[0].message.content"),
        "{error}"
    );

    // A caller that stops before the request is sent: nothing reaches the endpoint.
    let fake = fake(StatusCode::OK, "{}");
    let received = Arc::clone(&fake.received);
    let generator =
        EndpointGenerator::new(&serve(fake), "m", None, Duration::from_secs(10)).unwrap();
    let error = generator
        .generate(&REQUEST, &mut |_| Err("cancelled".into()))
        .unwrap_err();
    assert_eq!(error.to_string(), "cancelled");
    assert!(received.lock().unwrap().is_empty());

    let error = EndpointGenerator::new("localhost:8080", "m", None, Duration::from_secs(1))
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("https://api.openai.com/v1"), "{error}");
}
