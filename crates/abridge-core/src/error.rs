use std::fmt;

/// An error from a model runtime, passed through the traits without tying this crate to it.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Errors of the compression core.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The caller's input cannot be honoured; the message says what to change.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// One option of the request is wrong; front ends word it in their own terms
    /// ([`OptionError::describe`]).
    #[error("invalid input: {0}")]
    InvalidOption(Box<OptionError>),
    /// The scorer, classifier, embedder or counter failed.
    #[error(transparent)]
    Model(#[from] BoxError),
}

impl From<OptionError> for Error {
    fn from(error: OptionError) -> Self {
        Self::InvalidOption(Box::new(error))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A wrong option: which one, what is wrong, and how to fix it. The field is named as in
/// [`crate::CompressionOptions`] (LLMLingua's names); each front end spells it its own way
/// through a [`Wording`].
#[derive(Debug, Clone, PartialEq)]
pub struct OptionError {
    pub field: &'static str,
    /// What is wrong, to follow the field's name: "must be in (0, 1], got 1.5".
    pub problem: String,
    pub fix: Fix,
}

/// How to fix a wrong option.
#[derive(Debug, Clone, PartialEq)]
pub enum Fix {
    /// Nothing more to say than the problem.
    None,
    /// Set the field to this value instead, e.g. `0.5`.
    Example(String),
    /// Remove the field, or set `method` to this method, which takes it.
    RemoveOrUse(&'static str),
    /// Free text.
    Text(String),
}

/// How a front end names options: a flag (`--rate 0.5`), a JSON field (`"rate": 0.5`) or a
/// keyword (`rate=0.5`).
pub trait Wording {
    fn name(&self, field: &str) -> String;
    fn setting(&self, field: &str, value: &str) -> String;
}

/// The library's own wording: `rate`, `rate = 0.5`.
struct FieldNames;

impl Wording for FieldNames {
    fn name(&self, field: &str) -> String {
        field.to_string()
    }
    fn setting(&self, field: &str, value: &str) -> String {
        format!("{field} = {value}")
    }
}

impl OptionError {
    pub fn new(field: &'static str, problem: impl Into<String>, fix: Fix) -> Self {
        Self {
            field,
            problem: problem.into(),
            fix,
        }
    }

    /// The message in a front end's terms, e.g. "--rate must be in (0, 1], got 1.5: pass e.g.
    /// --rate 0.5".
    pub fn describe(&self, wording: &dyn Wording) -> String {
        let mut message = format!("{} {}", wording.name(self.field), self.problem);
        match &self.fix {
            Fix::None => {}
            Fix::Example(value) => {
                message.push_str(": pass e.g. ");
                message.push_str(&wording.setting(self.field, value));
            }
            Fix::RemoveOrUse(method) => message.push_str(&format!(
                ": remove it or pass {}",
                wording.setting("method", method)
            )),
            Fix::Text(text) => {
                message.push_str(": ");
                message.push_str(text);
            }
        }
        message
    }
}

impl fmt::Display for OptionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe(&FieldNames))
    }
}
