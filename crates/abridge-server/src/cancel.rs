//! Stopping a compression nobody waits for any more: its deadline passed, its client hung up, or
//! the server is shutting down. A blocking thread cannot be killed, so the scorer itself checks a
//! flag between slices of its input and fails once the flag is set; the worker is then free
//! within one slice's forward pass instead of after the whole compression. A generator (the
//! `rewrite` method's) checks it after every token it writes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use abridge_core::{BoxError, Generation, Generator, ModelToken, ScoringSession, TokenScorer};

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

    fn check(&self) -> Result<(), BoxError> {
        if self.is_cancelled() {
            Err(Box::new(Cancelled))
        } else {
            Ok(())
        }
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

/// A scorer whose sessions stop once `cancel` is set.
pub struct Cancellable<'a> {
    pub scorer: &'a dyn TokenScorer,
    pub cancel: &'a Cancel,
}

impl TokenScorer for Cancellable<'_> {
    fn tokenize(&self, text: &str) -> Result<Vec<ModelToken>, BoxError> {
        self.cancel.check()?;
        self.scorer.tokenize(text)
    }

    fn session(&self) -> Result<Box<dyn ScoringSession + '_>, BoxError> {
        self.cancel.check()?;
        Ok(Box::new(Session {
            inner: self.scorer.session()?,
            cancel: self.cancel,
        }))
    }

    fn max_context(&self) -> usize {
        self.scorer.max_context()
    }
}

/// A generator that stops once `cancel` is set (it checks after every token it writes).
pub struct CancellableGenerator<'a> {
    pub generator: &'a dyn Generator,
    pub cancel: &'a Cancel,
}

impl Generator for CancellableGenerator<'_> {
    fn generate(
        &self,
        request: &Generation,
        on_token: &mut dyn FnMut(usize) -> Result<(), BoxError>,
    ) -> Result<String, BoxError> {
        self.cancel.check()?;
        self.generator.generate(request, &mut |n| {
            self.cancel.check()?;
            on_token(n)
        })
    }

    fn name(&self) -> &str {
        self.generator.name()
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
    use abridge_core::testing::FakeScorer;

    use super::*;

    #[test]
    fn a_cancelled_session_stops_and_an_uncancelled_one_scores_the_same() {
        // Recall makes a token's score depend on the session, so splitting would show.
        let fake = FakeScorer::new().with_recall(0.5);
        let cancel = Cancel::default();
        let scorer = Cancellable {
            scorer: &fake,
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
    fn the_pools_flag_cancels_every_job() {
        let pool = Arc::new(AtomicBool::new(false));
        let cancel = Cancel::new(Arc::clone(&pool));
        assert!(!cancel.is_cancelled());
        pool.store(true, Ordering::SeqCst);
        assert!(cancel.is_cancelled());
    }
}
