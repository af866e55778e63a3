//! `abridge serve`: the HTTP service (compression API, OpenAI-compatible proxy, web page).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use abridge_models::{ChatGenerator, FastClassifier, SentenceEncoder, TokenClassificationModel};
use abridge_server::{AppState, Config};
use anyhow::Context;

use crate::model::ModelArgs;

/// After `serve` returns, how long blocking threads (a cancelled compression finishing its
/// forward pass) may delay the exit.
const SHUTDOWN_TAIL: Duration = Duration::from_secs(2);

#[derive(clap::Args)]
pub struct Args {
    /// Address to listen on (0.0.0.0 exposes the server to the network).
    #[arg(long, default_value = "127.0.0.1")]
    host: String,

    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8080)]
    port: u16,

    /// A TOML config file: upstream, which chat messages to compress, default options, limits.
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,

    /// OpenAI-compatible API to forward /v1/chat/completions to, e.g. https://api.openai.com/v1
    /// (overrides the config's [upstream] url).
    #[arg(long, value_name = "URL")]
    upstream: Option<String>,

    /// Compressions that run at once (overrides the config's [limits] workers; default: one per
    /// core).
    #[arg(long, value_name = "N")]
    workers: Option<usize>,

    #[command(flatten)]
    model: ModelArgs,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let mut config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    if let Some(url) = args.upstream {
        config.upstream.url = Some(url);
    }
    if let Some(workers) = args.workers {
        anyhow::ensure!(workers > 0, "--workers must be at least 1");
        config.limits.workers = workers;
    }
    let llmlingua2 = match &config.models.classifier {
        Some(dir) => Some(Arc::new(
            TokenClassificationModel::load(dir)
                .with_context(|| format!("[models] classifier = {}", dir.display()))?,
        )),
        None => None,
    };
    let rewriter = match &config.models.rewriter {
        Some(path) => Some(Arc::new(
            ChatGenerator::load(path, args.model.load_options())
                .with_context(|| format!("[models] rewriter = {}", path.display()))?,
        )),
        None => None,
    };
    let model = Arc::new(args.model.load()?);
    let mut state = AppState::new(config, model)?;
    if let Some(classifier) = llmlingua2 {
        state = state.with_llmlingua2(classifier);
    }
    if let Some(rewriter) = rewriter {
        state = state.with_generator(rewriter);
    }
    match FastClassifier::load_default() {
        Ok(fast) => state = state.with_fast(Arc::new(fast)),
        Err(e) => tracing::warn!(
            "no abridge-fast classifier, so no auto or fast method: {e} (`abridge models fetch` installs it)"
        ),
    }
    match SentenceEncoder::load_default() {
        Ok(embedder) => state = state.with_embedder(Arc::new(embedder)),
        Err(e) => tracing::warn!(
            "no sentence embedder: auto's question relevance falls back to BM25 and the embedding ranker is off: {e} (`abridge models fetch` installs it)"
        ),
    }
    let state = Arc::new(state);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let served = runtime.block_on(async {
        let listener = abridge_server::bind(&args.host, args.port).await?;
        let address = listener.local_addr()?;
        eprintln!(
            "abridge: serving on http://{address} ({} workers{}); Ctrl-C stops",
            state.pool.size(),
            match &state.config.upstream.url {
                Some(url) => format!(", proxying chat completions to {url}"),
                None => String::new(),
            }
        );
        abridge_server::serve(listener, state, abridge_server::shutdown_signal()).await?;
        anyhow::Ok(())
    });
    // Compressions still running were cancelled when the grace ran out and stop within one
    // scoring slice; a runtime dropped normally would wait for them however long they took.
    runtime.shutdown_timeout(SHUTDOWN_TAIL);
    served
}
