//! What the server's integration tests share: the real default model (loaded once per test
//! binary), a server on an ephemeral loopback port, and an HTTP client.

// Each test binary compiles this module and uses a different part of it.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use abridge_models::{fetch, FastClassifier, LanguageModel, LoadOptions, SentenceEncoder};
use abridge_server::{AppState, Config};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Natural prose of about 280 cl100k tokens.
pub const SAMPLE: &str = include_str!("../../../../examples/sample.txt");

/// SmolLM2-135M, as `abridge serve` loads it by default.
pub fn model() -> Arc<LanguageModel> {
    static MODEL: OnceLock<Arc<LanguageModel>> = OnceLock::new();
    Arc::clone(MODEL.get_or_init(|| {
        let path = fetch::default_model_path();
        assert!(
            path.exists(),
            "the default model is missing at {}: run scripts/fetch-models.sh",
            path.display()
        );
        Arc::new(LanguageModel::load(&path, LoadOptions::default()).expect("the model loads"))
    }))
}

/// all-MiniLM-L6-v2, which `abridge serve` adds when it is installed.
pub fn embedder() -> Arc<SentenceEncoder> {
    static EMBEDDER: OnceLock<Arc<SentenceEncoder>> = OnceLock::new();
    Arc::clone(EMBEDDER.get_or_init(|| {
        Arc::new(
            SentenceEncoder::load_default().unwrap_or_else(|e| {
                panic!("{e} (the tests need MiniLM: run scripts/fetch-models.sh)")
            }),
        )
    }))
}

/// abridge-fast's classifier, which `abridge serve` adds when it is installed.
pub fn fast() -> Arc<FastClassifier> {
    static FAST: OnceLock<Arc<FastClassifier>> = OnceLock::new();
    Arc::clone(FAST.get_or_init(|| {
        Arc::new(FastClassifier::load_default().unwrap_or_else(|e| {
            panic!("{e} (the tests need abridge-fast: run scripts/fetch-models.sh)")
        }))
    }))
}

/// A server running on its own task until dropped (or `stop`ped).
pub struct TestServer {
    pub addr: SocketAddr,
    pub state: Arc<AppState>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl TestServer {
    pub async fn start(config: Config) -> Self {
        Self::start_state(
            AppState::new(config, model())
                .expect("a valid config")
                .with_embedder(embedder())
                .with_fast(fast()),
        )
        .await
    }

    /// Starts a server on `state`.
    pub async fn start_state(state: AppState) -> Self {
        let state = Arc::new(state);
        let listener = abridge_server::bind("127.0.0.1", 0).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (shutdown, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(abridge_server::serve(
            listener,
            Arc::clone(&state),
            async move {
                let _ = stopped.await;
            },
        ));
        Self {
            addr,
            state,
            shutdown: Some(shutdown),
            task: Some(tokio::spawn(async move {
                task.await.unwrap().unwrap();
            })),
        }
    }

    /// Starts a server whose config is this TOML.
    pub async fn with_toml(toml: &str) -> Self {
        Self::start(Config::parse(toml).unwrap()).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Asks for a graceful shutdown and waits until the server has stopped.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(120), task)
                .await
                .expect("the server stops")
                .unwrap();
        }
    }

    /// Waits until no compression is running; fails after `limit` (a worker that stayed busy).
    pub async fn wait_idle(&self, limit: Duration) {
        let started = std::time::Instant::now();
        while self.state.pool.busy() > 0 {
            assert!(started.elapsed() < limit, "the worker stayed busy");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until `busy` compressions are running.
    pub async fn wait_busy(&self, busy: usize) {
        for _ in 0..2000 {
            if self.state.pool.busy() >= busy {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("no compression started");
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(300))
        .build()
        .unwrap()
}

/// The sample, repeated to at least `bytes` bytes.
pub fn long_text(bytes: usize) -> String {
    let mut text = String::new();
    while text.len() < bytes {
        text.push_str(SAMPLE);
        text.push('\n');
    }
    text
}
