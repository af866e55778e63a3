//! Stopping a compression nobody waits for any more: its deadline passed, its client hung up, or
//! the server is shutting down. A blocking thread cannot be killed, so the models themselves check
//! a flag between slices of their input (a scorer's tokens, a classifier's windows, an embedder's
//! batches, a generator's tokens) and fail once it is set; the worker is then free within one
//! slice's forward pass instead of after the whole compression.

use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use abridge_core::{
    BoxError, Embedder, Generation, Generator, Interrupt, ModelToken, ScoringSession,
    TokenClassifier, TokenScorer,
};

/// Tokens scored between two checks of the flag: a few hundred milliseconds of a forward pass on
/// the default model.
const SLICE: usize = 128;

/// Why a cancelled compression failed (never shown to a client: its caller has gone).
#[derive(Debug, thiserror::Error)]
#[error("the compression was cancelled (its deadline passed, its client left or the server is stopping)")]
pub struct Cancelled;

/// A job's cancellation: its own flag, or the pool's (set at shutdown).
#[derive(Clone, Default)]
pub struct Cancel {
    job: Arc<AtomicBool>,
    pool: Arc<AtomicBool>,
}

impl Cancel {
    pub(crate) fn new(pool: Arc<AtomicBool>) -> Self {
        Self {
            job: Arc::default(),
            pool,
        }
    }

    pub fn cancel(&self) {
        self.job.store(true, Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.job.load(Ordering::SeqCst) || self.pool.load(Ordering::SeqCst)
    }
}

impl Interrupt for Cancel {
    fn check(&self) -> Result<(), BoxError> {
        if self.is_cancelled() {
            Err(Box::new(Cancelled))
        } else {
            Ok(())
        }
    }
}

/// Stops when either does: a job's [`Cancel`] and whatever its caller passed.
struct Either<'a>(&'a Cancel, &'a dyn Interrupt);

impl Interrupt for Either<'_> {
    fn check(&self) -> Result<(), BoxError> {
        self.0.check()?;
        self.1.check()
    }
}

/// Sets the flag when dropped: a caller that returns early (timeout) or is dropped mid-await (a
/// client that disconnects) cancels its job either way.
pub(crate) struct CancelOnDrop(pub Cancel);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// A model (scorer, classifier, embedder or generator) that stops once `cancel` is set: a scorer's sessions
/// between slices of their input, a classifier between its windows, an embedder between batches.
pub struct Cancellable<'a, M: ?Sized> {
    pub model: &'a M,
    pub cancel: &'a Cancel,
}

impl TokenScorer for Cancellable<'_, dyn TokenScorer + '_> {
    fn tokenize(&self, text: &str) -> Result<Vec<ModelToken>, BoxError> {
        self.cancel.check()?;
        self.model.tokenize(text)
    }

    fn session(&self) -> Result<Box<dyn ScoringSession + '_>, BoxError> {
        self.cancel.check()?;
        Ok(Box::new(Session {
            inner: self.model.session()?,
            cancel: self.cancel,
        }))
    }

    fn max_context(&self) -> usize {
        self.model.max_context()
    }
}

impl TokenClassifier for Cancellable<'_, dyn TokenClassifier + '_> {
    fn keep_probabilities_until(
        &self,
        text: &str,
        interrupt: &dyn Interrupt,
    ) -> Result<Vec<(Range<usize>, f32)>, BoxError> {
        self.model
            .keep_probabilities_until(text, &Either(self.cancel, interrupt))
    }

    fn window_tokens(&self) -> usize {
        self.model.window_tokens()
    }
}

impl Embedder for Cancellable<'_, dyn Embedder + '_> {
    fn embed_until(
        &self,
        texts: &[&str],
        interrupt: &dyn Interrupt,
    ) -> Result<Vec<Vec<f32>>, BoxError> {
        self.model
            .embed_until(texts, &Either(self.cancel, interrupt))
    }
}

/// A generator checks after every token it writes.
impl Generator for Cancellable<'_, dyn Generator + '_> {
    fn generate(
        &self,
        request: &Generation,
        on_token: &mut dyn FnMut(usize) -> Result<(), BoxError>,
    ) -> Result<String, BoxError> {
        self.cancel.check()?;
        self.model.generate(request, &mut |n| {
            self.cancel.check()?;
            on_token(n)
        })
    }

    fn name(&self) -> &str {
        self.model.name()
    }
}

struct Session<'a> {
    inner: Box<dyn ScoringSession + 'a>,
    cancel: &'a Cancel,
}

impl ScoringSession for Session<'_> {
    /// Reads `ids` a slice at a time (a session's scores do not depend on how its input is
    /// split), checking the flag before each.
    fn extend(&mut self, ids: &[u32]) -> Result<Vec<f32>, BoxError> {
        let mut surprisal = Vec::with_capacity(ids.len());
        for slice in ids.chunks(SLICE) {
            self.cancel.check()?;
            surprisal.extend(self.inner.extend(slice)?);
        }
        Ok(surprisal)
    }

    fn truncate(&mut self, len: usize) {
        self.inner.truncate(len);
    }

    fn len(&self) -> usize {
        self.inner.len()
    }
}

#[cfg(test)]
mod tests {
    use abridge_core::testing::{FakeClassifier, FakeEmbedder, FakeScorer};

    use super::*;

    #[test]
    fn a_cancelled_session_stops_and_an_uncancelled_one_scores_the_same() {
        // Recall makes a token's score depend on the session, so splitting would show.
        let fake = FakeScorer::new().with_recall(0.5);
        let cancel = Cancel::default();
        let scorer = Cancellable {
            model: &fake as &dyn TokenScorer,
            cancel: &cancel,
        };
        let text: String = (0..300).map(|i| format!("w{} ", i % 37)).collect();
        let ids: Vec<u32> = fake.tokenize(&text).unwrap().iter().map(|t| t.id).collect();
        let direct = fake.session().unwrap().extend(&ids).unwrap();
        let mut session = scorer.session().unwrap();
        assert_eq!(session.extend(&ids).unwrap(), direct);
        cancel.cancel();
        let error = session.extend(&ids).unwrap_err();
        assert!(error.is::<Cancelled>(), "{error}");
        assert!(scorer.session().is_err() && scorer.tokenize("a").is_err());
    }

    #[test]
    fn a_cancelled_classifier_and_embedder_stop_and_uncancelled_ones_answer_the_same() {
        let (fake_classifier, fake_embedder) =
            (FakeClassifier::new().with("cats", 0.9), FakeEmbedder);
        let cancel = Cancel::default();
        let classifier = Cancellable {
            model: &fake_classifier as &dyn TokenClassifier,
            cancel: &cancel,
        };
        let embedder = Cancellable {
            model: &fake_embedder as &dyn Embedder,
            cancel: &cancel,
        };
        let text = "the cats sat";
        assert_eq!(
            classifier.keep_probabilities(text).unwrap(),
            fake_classifier.keep_probabilities(text).unwrap()
        );
        assert_eq!(
            embedder.embed(&[text]).unwrap(),
            fake_embedder.embed(&[text]).unwrap()
        );
        cancel.cancel();
        let error = classifier.keep_probabilities(text).unwrap_err();
        assert!(error.is::<Cancelled>(), "{error}");
        assert!(embedder.embed(&[text]).unwrap_err().is::<Cancelled>());
    }

    #[test]
    fn the_pools_flag_cancels_every_job() {
        let pool = Arc::new(AtomicBool::new(false));
        let cancel = Cancel::new(Arc::clone(&pool));
        assert!(!cancel.is_cancelled());
        pool.store(true, Ordering::SeqCst);
        assert!(cancel.is_cancelled());
    }
}
