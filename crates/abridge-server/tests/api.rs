//! `/v1/compress`, `/healthz`, `/metrics`, limits and bad input, against the real server and the
//! real default model.

mod common;

use std::sync::OnceLock;

use common::{client, long_text, TestServer, SAMPLE};
use proptest::prelude::*;
use serde_json::{json, Value};

async fn post(server: &TestServer, body: impl Into<reqwest::Body>) -> (u16, Value) {
    let response = client()
        .post(server.url("/v1/compress"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn compress_answers_counts_ratio_timings_and_the_label_map() {
    let server = TestServer::with_toml("").await;
    let body = json!({
        "instruction": "Answer from the text.",
        "context": SAMPLE,
        "question": "What is the text about?",
        "rate": 0.5,
        "force_tokens": ["1871"],
        "label_map": true,
    });
    let (status, result) = post(&server, body.to_string()).await;
    assert_eq!(status, 200, "{result}");
    let origin = result["origin_tokens"].as_u64().unwrap();
    let compressed = result["compressed_tokens"].as_u64().unwrap();
    assert!(origin > 250, "{result}");
    // The budget is the whole prompt's, instruction and question included.
    let target = result["target_tokens"].as_u64().unwrap();
    assert_eq!(target, (origin as f64 * 0.5).round() as u64);
    assert!(
        compressed <= target + 2 && compressed + 10 >= target,
        "{compressed} of {target}"
    );
    let ratio = result["ratio"].as_f64().unwrap();
    assert!((ratio - origin as f64 / compressed as f64).abs() < 1e-9);
    assert_eq!(result["tokenizer"], "cl100k_base");
    assert!(result["timings"]["total_seconds"].as_f64().unwrap() > 0.0);
    let text = result["text"].as_str().unwrap();
    assert!(text.starts_with("Answer from the text."), "{text}");
    assert!(text.ends_with("What is the text about?"), "{text}");

    // The spans tile the source, and the kept ones are the compressed text's words.
    let source = result["source"].as_str().unwrap();
    let spans = result["spans"].as_array().unwrap();
    let mut end = 0;
    let mut kept = String::new();
    for span in spans {
        let (start, stop) = (
            span["span"]["start"].as_u64().unwrap() as usize,
            span["span"]["end"].as_u64().unwrap() as usize,
        );
        assert_eq!(start, end);
        end = stop;
        if span["kept"] == true {
            kept.push_str(&source[start..stop]);
        }
    }
    assert_eq!(end, source.len());
    let letters = |s: &str| s.split_whitespace().collect::<String>();
    assert_eq!(letters(&kept), letters(text));

    // Without label_map the answer is small.
    let (status, result) = post(
        &server,
        json!({"context": [SAMPLE, "A second, short document."], "method": "selective-context", "rate": 0.7}).to_string(),
    )
    .await;
    assert_eq!(status, 200, "{result}");
    assert!(result.get("spans").is_none() && result.get("source").is_none());
    assert!(result["compressed_tokens"].as_u64() < result["origin_tokens"].as_u64());
}

#[tokio::test]
async fn longllmlingua_ranks_the_relevant_document_first_with_each_ranker() {
    let server = TestServer::with_toml("").await;
    let documents = [
        "Bananas are grown in tropical climates and exported worldwide by ship.",
        "The railway reached the harbour town of Vellmouth in 1871, and a customs house was built beside the herring sheds.",
        "Mount Everest is the highest mountain above sea level, on the border of Nepal and China.",
    ];
    for rank_method in ["longllmlingua", "bm25", "embedding"] {
        let body = json!({
            "method": "longllmlingua",
            "rank_method": rank_method,
            "context": documents,
            "question": "When did the railway reach Vellmouth?",
            "rate": 0.6,
            "force_tokens": ["1871"],
        });
        let (status, result) = post(&server, body.to_string()).await;
        assert_eq!(status, 200, "{rank_method}: {result}");
        let text = result["text"].as_str().unwrap();
        // Sorted by relevance, the railway document comes first, with its date.
        let first = text.split("\n\n").next().unwrap();
        assert!(
            first.contains("railway") && first.contains("1871"),
            "{rank_method}: {text}"
        );
        assert!(
            text.ends_with("When did the railway reach Vellmouth?"),
            "{text}"
        );
    }
}

#[tokio::test]
async fn bad_input_is_a_4xx_with_a_stable_code_and_a_clear_message() {
    let server = TestServer::with_toml("[limits]\nmax_body_bytes = 65536").await;
    let huge = json!({"context": long_text(100_000)}).to_string();
    let cases: Vec<(Vec<u8>, u16, &str, &str)> = vec![
        (
            b"{\"context\": \"a\",".to_vec(),
            400,
            "invalid_json",
            "not valid JSON",
        ),
        (b"".to_vec(), 400, "invalid_json", "EOF"),
        (
            b"{\"context\": \"caf\xe9\"}".to_vec(),
            400,
            "invalid_utf8",
            "UTF-8",
        ),
        (
            b"[\"text\"]".to_vec(),
            400,
            "invalid_request",
            "must be a JSON object",
        ),
        (huge.into_bytes(), 413, "body_too_large", "max_body_bytes"),
        (
            json!({"context": "text", "rate": "half"})
                .to_string()
                .into_bytes(),
            400,
            "invalid_request",
            "rate: invalid type: string",
        ),
        (
            json!({"context": "text", "rate": 1.5})
                .to_string()
                .into_bytes(),
            400,
            "invalid_request",
            "`rate` must be in (0, 1]",
        ),
        (
            json!({"context": "text", "rate": 0})
                .to_string()
                .into_bytes(),
            400,
            "invalid_request",
            "`rate` must be in (0, 1]",
        ),
        (
            json!({"context": "text", "rate": 0.5, "target_token": 9})
                .to_string()
                .into_bytes(),
            400,
            "invalid_request",
            "give only one of rate, target_token and threshold",
        ),
        (
            json!({"context": "text", "method": "llmlingua-9"})
                .to_string()
                .into_bytes(),
            400,
            "invalid_request",
            "`llmlingua-9` is not a method",
        ),
        (
            json!({"context": "text", "compression": 2})
                .to_string()
                .into_bytes(),
            400,
            "invalid_request",
            "unknown field `compression`",
        ),
        (
            json!({"context": 42}).to_string().into_bytes(),
            400,
            "invalid_request",
            "context must be a string or a list of strings",
        ),
        (
            json!({"context": ["a", null]}).to_string().into_bytes(),
            400,
            "invalid_request",
            "got null",
        ),
        (
            json!({"question": "why?"}).to_string().into_bytes(),
            400,
            "invalid_request",
            "nothing to compress",
        ),
        (
            json!({"context": "  "}).to_string().into_bytes(),
            400,
            "invalid_request",
            "the text is empty",
        ),
        (
            json!({"context": "text", "label_map": "yes"})
                .to_string()
                .into_bytes(),
            400,
            "invalid_request",
            "label_map must be true or false",
        ),
        (
            json!({"context": "text", "patterns": ["("]})
                .to_string()
                .into_bytes(),
            400,
            "invalid_request",
            "invalid protect pattern",
        ),
        (
            json!({"context": "text", "method": "llmlingua", "force_context_ids": [3]})
                .to_string()
                .into_bytes(),
            400,
            "invalid_request",
            "names context 3, and there is no such context",
        ),
        (
            json!({"context": "text", "target_tokenizer": "gpt2"})
                .to_string()
                .into_bytes(),
            400,
            "invalid_request",
            "cl100k_base",
        ),
        (
            json!({"context": "text", "iterative_size": -1})
                .to_string()
                .into_bytes(),
            400,
            "invalid_request",
            "iterative_size: invalid value",
        ),
        (
            json!({"context": "text", "method": "llmlingua", "iterative_size": 1})
                .to_string()
                .into_bytes(),
            400,
            "invalid_request",
            "must be at least 32",
        ),
    ];
    for (body, status, code, message) in cases {
        let shown = String::from_utf8_lossy(&body[..body.len().min(80)]).into_owned();
        let (got, error) = post(&server, body).await;
        assert_eq!(got, status, "{shown}: {error}");
        assert_eq!(error["error"]["code"], code, "{shown}: {error}");
        let text = error["error"]["message"].as_str().unwrap();
        assert!(text.contains(message), "{shown}: {text}");
    }

    for (method, path, status, code) in [
        ("GET", "/v1/compress", 405, "method_not_allowed"),
        ("POST", "/v2/compress", 404, "not_found"),
        ("POST", "/v1/chat/completions", 503, "no_upstream"),
    ] {
        let response = client()
            .request(method.parse().unwrap(), server.url(path))
            .body("{\"messages\": []}")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{method} {path}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"]["code"], code);
    }
    // Nothing above was the server's fault: the only 5xx is the missing upstream's 503.
    let metrics = client()
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in metrics.lines().filter(|l| l.contains("status=\"5")) {
        assert_eq!(
            line,
            "abridge_requests_total{route=\"/v1/chat/completions\",status=\"503\"} 1"
        );
    }
}

#[tokio::test]
async fn healthz_and_metrics_report_requests_tokens_and_the_queue() {
    let server = TestServer::with_toml("[limits]\nworkers = 2").await;
    let health: Value = client()
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        health,
        json!({"status": "ok", "workers": 2, "busy": 0, "queued": 0, "upstream": false})
    );
    let (status, result) = post(&server, json!({"context": SAMPLE, "rate": 0.4}).to_string()).await;
    assert_eq!(status, 200);
    let (status, _) = post(&server, "nope").await;
    assert_eq!(status, 400);

    let response = client().get(server.url("/metrics")).send().await.unwrap();
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let metrics = response.text().await.unwrap();
    for line in [
        "abridge_requests_total{route=\"/v1/compress\",status=\"200\"} 1".to_string(),
        "abridge_requests_total{route=\"/v1/compress\",status=\"400\"} 1".to_string(),
        "abridge_requests_total{route=\"/healthz\",status=\"200\"} 1".to_string(),
        "abridge_request_duration_seconds_count{route=\"/v1/compress\"} 2".to_string(),
        "abridge_compressions_total 1".to_string(),
        format!("abridge_tokens_in_total {}", result["origin_tokens"]),
        format!("abridge_tokens_out_total {}", result["compressed_tokens"]),
        "abridge_queue_depth 0".to_string(),
        "abridge_workers 2".to_string(),
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "missing {line} in\n{metrics}"
        );
    }
}

#[tokio::test]
async fn a_full_queue_answers_503_with_retry_after_and_a_shutdown_finishes_in_flight_work() {
    // A grace far above the compression's time, even on a loaded machine: in-flight work finishes.
    let server =
        TestServer::with_toml("[limits]\nworkers = 1\nmax_queue = 0\nshutdown_grace_seconds = 600")
            .await;
    let long = json!({"context": long_text(6000), "rate": 0.5}).to_string();
    let url = server.url("/v1/compress");
    let in_flight = tokio::spawn({
        let long = long.clone();
        async move { client().post(url).body(long).send().await.unwrap() }
    });
    server.wait_busy(1).await;

    let response = client()
        .post(server.url("/v1/compress"))
        .body(long)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "2");
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["code"], "overloaded");

    // A graceful shutdown lets the running compression answer, then refuses connections.
    let addr = server.addr;
    server.stop().await;
    let answered = in_flight.await.unwrap();
    assert_eq!(answered.status(), 200);
    let result: Value = answered.json().await.unwrap();
    assert!(result["compressed_tokens"].as_u64() < result["origin_tokens"].as_u64());
    assert!(client()
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .is_err());
}

/// One server and runtime for every property-test case (starting a server per case would
/// dominate the run).
fn shared() -> &'static (tokio::runtime::Runtime, TestServer) {
    static SHARED: OnceLock<(tokio::runtime::Runtime, TestServer)> = OnceLock::new();
    SHARED.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let server = runtime.block_on(TestServer::with_toml("[limits]\nmax_body_bytes = 20000"));
        (runtime, server)
    })
}

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "\\PC{0,40}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("\\PC{0,8}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Objects whose keys are mostly the API's own, with values of any type: these reach deeper
/// into the validation than arbitrary keys do.
fn api_like_json() -> impl Strategy<Value = Value> {
    let key = prop::sample::select(vec![
        "context",
        "contexts",
        "instruction",
        "question",
        "method",
        "rate",
        "target_token",
        "threshold",
        "unit",
        "force_tokens",
        "force_reserve_digit",
        "patterns",
        "protect_code",
        "markup",
        "iterative_size",
        "context_budget",
        "use_context_level_filter",
        "force_context_ids",
        "target_tokenizer",
        "label_map",
    ]);
    let value = prop_oneof![
        any_json(),
        "[a-z ]{1,60}".prop_map(Value::String),
        (0.0f64..1.2).prop_map(Value::from),
        prop::sample::select(vec![
            "llmlingua",
            "selective-context",
            "sentence",
            "word",
            "+10",
            "*2"
        ])
        .prop_map(Value::from),
    ];
    prop::collection::btree_map(key, value, 0..7)
        .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect()))
}

fn assert_no_server_error(body: Vec<u8>) -> Result<(), TestCaseError> {
    let (runtime, server) = shared();
    let (status, answer) = runtime.block_on(post(server, body));
    prop_assert!(status < 500, "{status}: {answer}");
    if status >= 400 {
        prop_assert!(answer["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn random_json_never_gets_a_server_error(value in any_json()) {
        assert_no_server_error(value.to_string().into_bytes())?;
    }

    #[test]
    fn random_api_shaped_json_never_gets_a_server_error(value in api_like_json()) {
        assert_no_server_error(value.to_string().into_bytes())?;
    }

    #[test]
    fn random_bytes_never_get_a_server_error(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        assert_no_server_error(bytes)?;
    }
}
