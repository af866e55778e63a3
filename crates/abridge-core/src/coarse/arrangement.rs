//! The coarse stage's result: which documents are kept, in what order, and how much of each the
//! fine stage keeps.

/// The coarse stage's decisions about whole documents.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Arrangement {
    /// The documents (input indices) in their new order: the kept ones as arranged, then the
    /// dropped ones in input order (with `reorder_context="original"`, simply input order).
    pub order: Vec<usize>,
    /// Whether the document at each new position is kept.
    pub kept: Vec<bool>,
    /// The keep-ratio offset of the document at each new position (dynamic ratio).
    pub offsets: Vec<f64>,
}

impl Arrangement {
    pub fn identity(documents: usize) -> Self {
        Self {
            order: (0..documents).collect(),
            kept: vec![true; documents],
            offsets: vec![0.0; documents],
        }
    }

    /// Every document kept where it was.
    pub fn is_identity(&self) -> bool {
        self.order.iter().enumerate().all(|(i, &d)| i == d) && self.kept.iter().all(|&k| k)
    }

    /// The contexts in the new order.
    pub fn arrange<T: Clone>(&self, contexts: &[T]) -> Vec<T> {
        self.order.iter().map(|&i| contexts[i].clone()).collect()
    }
}
