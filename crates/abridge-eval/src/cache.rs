//! A memoising [`TokenScorer`] for evaluation: the same case is compressed at several rates, and
//! every compression re-reads the same text (Selective Context scores the whole prompt, whatever
//! the rate; LLMLingua's first window is the same at every rate). Identical reads (the same
//! chunk of ids after the same prefix) are answered from memory; the model session catches up
//! lazily, only when a read is new.
//!
//! Scores equal the model's up to float rounding (a cached read was computed once, possibly with
//! its prefix fed in other chunks). Use one cache per case: memory grows with what is read.

use std::cell::RefCell;
use std::collections::HashMap;

use abridge_core::{BoxError, ModelToken, ScoringSession, TokenScorer};

use crate::rng::mix;

/// Hash of a token sequence, extended one token at a time.
fn chain(hash: u64, id: u32) -> u64 {
    mix(hash ^ u64::from(id).wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

const EMPTY: u64 = 0x6a09_e667_f3bc_c908;

pub struct CachingScorer<'a> {
    inner: &'a dyn TokenScorer,
    /// (hash of the prefix, hash of prefix + chunk, chunk length) → the chunk's surprisals.
    reads: RefCell<HashMap<(u64, u64, usize), Vec<f32>>>,
    hits: RefCell<usize>,
}

impl<'a> CachingScorer<'a> {
    pub fn new(inner: &'a dyn TokenScorer) -> Self {
        Self {
            inner,
            reads: RefCell::new(HashMap::new()),
            hits: RefCell::new(0),
        }
    }

    /// Tokens answered from memory so far.
    pub fn hits(&self) -> usize {
        *self.hits.borrow()
    }
}

impl TokenScorer for CachingScorer<'_> {
    fn tokenize(&self, text: &str) -> Result<Vec<ModelToken>, BoxError> {
        self.inner.tokenize(text)
    }

    fn session(&self) -> Result<Box<dyn ScoringSession + '_>, BoxError> {
        Ok(Box::new(CachingSession {
            scorer: self,
            ids: Vec::new(),
            hashes: vec![EMPTY],
            model: None,
            model_ids: Vec::new(),
        }))
    }

    fn max_context(&self) -> usize {
        self.inner.max_context()
    }
}

struct CachingSession<'s> {
    scorer: &'s CachingScorer<'s>,
    /// What this session has read.
    ids: Vec<u32>,
    /// `hashes[i]` is the hash of `ids[..i]`.
    hashes: Vec<u64>,
    /// The model session, started on the first new read, and what it holds.
    model: Option<Box<dyn ScoringSession + 's>>,
    model_ids: Vec<u32>,
}

impl ScoringSession for CachingSession<'_> {
    fn extend(&mut self, ids: &[u32]) -> Result<Vec<f32>, BoxError> {
        let start = *self
            .hashes
            .last()
            .expect("hashes start with the empty prefix");
        let end = ids.iter().fold(start, |h, &id| chain(h, id));
        let key = (start, end, ids.len());
        let cached = self.scorer.reads.borrow().get(&key).cloned();
        let surprisal = match cached {
            Some(surprisal) => {
                *self.scorer.hits.borrow_mut() += ids.len();
                surprisal
            }
            None => {
                if self.model.is_none() {
                    self.model = Some(self.scorer.inner.session()?);
                }
                let model = self.model.as_mut().expect("just started");
                // Bring the model up to what this session has read.
                let common = self
                    .model_ids
                    .iter()
                    .zip(&self.ids)
                    .take_while(|(a, b)| a == b)
                    .count();
                model.truncate(common);
                self.model_ids.truncate(common);
                if common < self.ids.len() {
                    model.extend(&self.ids[common..])?;
                    self.model_ids.extend_from_slice(&self.ids[common..]);
                }
                let surprisal = model.extend(ids)?;
                self.model_ids.extend_from_slice(ids);
                self.scorer
                    .reads
                    .borrow_mut()
                    .insert(key, surprisal.clone());
                surprisal
            }
        };
        for &id in ids {
            let last = *self.hashes.last().expect("non-empty");
            self.hashes.push(chain(last, id));
        }
        self.ids.extend_from_slice(ids);
        Ok(surprisal)
    }

    fn truncate(&mut self, len: usize) {
        self.ids.truncate(len);
        self.hashes.truncate(self.ids.len() + 1);
    }

    fn len(&self) -> usize {
        self.ids.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use abridge_core::testing::FakeScorer;

    /// A scorer whose surprisal depends on the whole prefix, and that counts model reads.
    struct Contextual {
        reads: RefCell<usize>,
    }

    struct ContextualSession<'a> {
        scorer: &'a Contextual,
        ids: Vec<u32>,
    }

    impl TokenScorer for Contextual {
        fn tokenize(&self, text: &str) -> Result<Vec<ModelToken>, BoxError> {
            FakeScorer::new().tokenize(text)
        }
        fn session(&self) -> Result<Box<dyn ScoringSession + '_>, BoxError> {
            Ok(Box::new(ContextualSession {
                scorer: self,
                ids: Vec::new(),
            }))
        }
        fn max_context(&self) -> usize {
            usize::MAX
        }
    }

    impl ScoringSession for ContextualSession<'_> {
        fn extend(&mut self, ids: &[u32]) -> Result<Vec<f32>, BoxError> {
            *self.scorer.reads.borrow_mut() += ids.len();
            Ok(ids
                .iter()
                .map(|&id| {
                    self.ids.push(id);
                    self.ids.iter().map(|&i| i as f32).sum::<f32>() / self.ids.len() as f32
                })
                .collect())
        }
        fn truncate(&mut self, len: usize) {
            self.ids.truncate(len);
        }
        fn len(&self) -> usize {
            self.ids.len()
        }
    }

    fn run(scorer: &dyn TokenScorer) -> Vec<Vec<f32>> {
        let mut session = scorer.session().unwrap();
        let mut out = vec![
            session.extend(&[1, 2, 3]).unwrap(),
            session.extend(&[4]).unwrap(),
        ];
        session.truncate(2);
        out.push(session.extend(&[9, 9]).unwrap());
        session.truncate(3);
        out.push(session.extend(&[4]).unwrap());
        out
    }

    #[test]
    fn cached_reads_equal_the_models_and_skip_it() {
        let model = Contextual {
            reads: RefCell::new(0),
        };
        let direct = run(&model);
        let direct_reads = *model.reads.borrow();
        let cache = CachingScorer::new(&model);
        assert_eq!(run(&cache), direct);
        assert_eq!(cache.hits(), 0);
        let first = *model.reads.borrow() - direct_reads;
        // A second, identical pass is answered from memory entirely.
        assert_eq!(run(&cache), direct);
        assert_eq!(*model.reads.borrow() - direct_reads, first);
        assert_eq!(cache.hits(), 7);
        // A new read after cached ones makes the model catch up first.
        let mut session = cache.session().unwrap();
        session.extend(&[1, 2, 3]).unwrap();
        assert_eq!(session.extend(&[5]).unwrap(), [11.0 / 4.0]);
    }
}
