//! Scoring: model-token surprisal read through sessions that never overflow the model's context,
//! and its aggregation to units.

use std::ops::Range;
use std::time::{Duration, Instant};

use crate::{Error, ModelToken, Result, ScoringSession, TokenScorer};

/// Called with (model tokens scored, model tokens to score) as scoring advances.
pub type Progress<'a> = &'a dyn Fn(usize, usize);

/// Tokens scored between progress reports (and the most tokens fed to the model in one call).
const PROGRESS_STEP: usize = 256;

/// Tracks progress and the time spent inside the scorer.
pub(crate) struct Meter<'a> {
    progress: Option<Progress<'a>>,
    done: usize,
    total: usize,
    pub model_time: Duration,
}

impl<'a> Meter<'a> {
    pub fn new(progress: Option<Progress<'a>>) -> Self {
        Self {
            progress,
            done: 0,
            total: 0,
            model_time: Duration::ZERO,
        }
    }

    pub fn set_total(&mut self, total: usize) {
        self.total = total;
    }

    pub fn done(&self) -> usize {
        self.done
    }

    pub fn advance(&mut self, tokens: usize) {
        self.done = (self.done + tokens).min(self.total);
        if let Some(progress) = self.progress {
            progress(self.done, self.total);
        }
    }

    pub fn finish(&mut self) {
        self.advance(self.total.saturating_sub(self.done));
    }

    pub fn time<T>(&mut self, f: impl FnOnce() -> T) -> T {
        let started = Instant::now();
        let result = f();
        self.model_time += started.elapsed();
        result
    }

    /// Tokenizes with the scorer; the time counts as model time.
    pub fn tokenize(&mut self, scorer: &dyn TokenScorer, text: &str) -> Result<Vec<ModelToken>> {
        Ok(self.time(|| scorer.tokenize(text))?)
    }
}

/// A session that reads any number of tokens: when the model's context is full it starts a new
/// session that first re-reads the most recent half of what it held, so scoring goes on with
/// recent context instead of failing. Lengths are *logical*: they count every token read.
///
/// A session can be opened with a *pinned* prefix (a question that every later token is
/// conditioned on): rolling re-reads the prefix before the recent tokens, so the condition is
/// never forgotten. Logically the forgotten tokens lie between the prefix and what is held after
/// it; callers never truncate into the prefix.
pub(crate) struct RollingSession<'s> {
    scorer: &'s dyn TokenScorer,
    session: Box<dyn ScoringSession + 's>,
    /// The tokens the current model session holds: the pinned prefix, then recent tokens.
    held: Vec<u32>,
    /// Tokens read after the prefix that the current model session no longer holds.
    forgotten: usize,
    /// Length of the pinned prefix at the start of `held`.
    pinned: usize,
    capacity: usize,
}

impl<'s> RollingSession<'s> {
    pub fn new(scorer: &'s dyn TokenScorer, meter: &mut Meter) -> Result<Self> {
        let capacity = scorer.max_context();
        if capacity == 0 {
            return Err(Error::Model(
                "the scorer reports a context of 0 tokens".into(),
            ));
        }
        Ok(Self {
            scorer,
            session: meter.time(|| scorer.session())?,
            held: Vec::new(),
            forgotten: 0,
            pinned: 0,
            capacity,
        })
    }

    /// A session that has read `prefix` and keeps it through rolls. The prefix is cut to its
    /// last [`max_prefix`] tokens, so text always has room after it.
    pub fn with_prefix(
        scorer: &'s dyn TokenScorer,
        prefix: &[u32],
        meter: &mut Meter,
    ) -> Result<Self> {
        let mut session = Self::new(scorer, meter)?;
        let prefix = &prefix[prefix.len() - prefix.len().min(max_prefix(session.capacity))..];
        session.read(prefix, meter)?;
        session.pinned = prefix.len();
        Ok(session)
    }

    /// Tokens of the pinned prefix.
    pub fn pinned(&self) -> usize {
        self.pinned
    }

    pub fn len(&self) -> usize {
        self.forgotten + self.held.len()
    }

    /// Reads `ids` and returns the surprisal of each.
    pub fn extend(&mut self, ids: &[u32], meter: &mut Meter) -> Result<Vec<f32>> {
        let mut surprisals = Vec::with_capacity(ids.len());
        let mut rest = ids;
        while !rest.is_empty() {
            if self.held.len() >= self.capacity {
                self.roll(meter)?;
            }
            let n = rest.len().min(self.capacity - self.held.len());
            let (piece, tail) = rest.split_at(n);
            surprisals.extend(self.read(piece, meter)?);
            rest = tail;
        }
        Ok(surprisals)
    }

    /// Forgets every token after the first `len` (logical) tokens.
    pub fn truncate(&mut self, len: usize, meter: &mut Meter) -> Result<()> {
        let len = len.max(self.pinned);
        if len >= self.pinned + self.forgotten {
            self.held.truncate(len - self.forgotten);
            self.session.truncate(self.held.len());
        } else {
            // The prefix to return to was already rolled out of the model's context: start
            // again from the pinned prefix.
            self.session = meter.time(|| self.scorer.session())?;
            let prefix = self.held[..self.pinned].to_vec();
            self.held.clear();
            self.forgotten = len - self.pinned;
            self.read(&prefix, meter)?;
        }
        Ok(())
    }

    fn read(&mut self, ids: &[u32], meter: &mut Meter) -> Result<Vec<f32>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let surprisals = meter.time(|| self.session.extend(ids))?;
        if surprisals.len() != ids.len() {
            return Err(Error::Model(
                format!(
                    "the scorer returned {} surprisals for {} tokens",
                    surprisals.len(),
                    ids.len()
                )
                .into(),
            ));
        }
        self.held.extend_from_slice(ids);
        Ok(surprisals)
    }

    fn roll(&mut self, meter: &mut Meter) -> Result<()> {
        let recent = (self.capacity - self.pinned) / 2;
        let context = self.held.split_off(self.held.len() - recent);
        self.forgotten += self.held.len() - self.pinned;
        self.held.truncate(self.pinned);
        let prefix = std::mem::take(&mut self.held);
        self.session = meter.time(|| self.scorer.session())?;
        self.read(&prefix, meter)?;
        self.read(&context, meter)?;
        Ok(())
    }
}

/// The most tokens a pinned prefix may have in a session of `capacity`: a quarter, so that text
/// after it still gets most of the context (and rolling always has something to drop).
pub(crate) fn max_prefix(capacity: usize) -> usize {
    capacity / 4
}

/// Scores `ids` as one text from its start, reporting progress as it goes.
pub(crate) fn score_stream(
    scorer: &dyn TokenScorer,
    ids: &[u32],
    meter: &mut Meter,
) -> Result<Vec<f32>> {
    let mut session = RollingSession::new(scorer, meter)?;
    let mut surprisals = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(PROGRESS_STEP) {
        surprisals.extend(session.extend(chunk, meter)?);
        meter.advance(chunk.len());
    }
    Ok(surprisals)
}

/// The unit (of sorted units that tile the text) a model token belongs to: the one holding its
/// first byte. A token with an empty span (the tail of a character that byte-level BPE split, whose
/// span ends where the character ends) belongs to the unit holding the byte before it.
pub(crate) fn unit_of_token(units: &[Range<usize>], token: &Range<usize>) -> usize {
    let byte = if token.is_empty() {
        token.start.saturating_sub(1)
    } else {
        token.start
    };
    units
        .partition_point(|u| u.end <= byte)
        .min(units.len().saturating_sub(1))
}

/// Each unit's mean surprisal per model token: a token's surprisal is shared among the units it
/// overlaps in proportion to the bytes it has in each (so a token spanning two words counts half
/// in each; an empty-span token counts whole in [`unit_of_token`]'s unit), and a unit's score is
/// its share-weighted mean. The mean, not the sum, because selection spends a token budget: a
/// unit's information per token is what keeping it buys. Units no token touches get no score.
pub(crate) fn aggregate(
    units: &[Range<usize>],
    tokens: &[Range<usize>],
    surprisals: &[f32],
) -> Vec<Option<f32>> {
    let mut information = vec![0.0f64; units.len()];
    let mut weight = vec![0.0f64; units.len()];
    let mut add = |u: usize, surprisal: f32, share: f64| {
        information[u] += f64::from(surprisal) * share;
        weight[u] += share;
    };
    for (token, &surprisal) in tokens.iter().zip(surprisals) {
        if token.is_empty() {
            let u = unit_of_token(units, token);
            if units.get(u).is_some_and(|unit| unit.start < token.start) {
                add(u, surprisal, 1.0);
            }
            continue;
        }
        let first = units.partition_point(|u| u.end <= token.start);
        for (u, unit) in units.iter().enumerate().skip(first) {
            if unit.start >= token.end {
                break;
            }
            let overlap = unit.end.min(token.end) - unit.start.max(token.start);
            add(u, surprisal, overlap as f64 / token.len() as f64);
        }
    }
    information
        .iter()
        .zip(&weight)
        .map(|(&info, &w)| (w > 0.0).then(|| (info / w) as f32))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakeScorer;

    #[test]
    fn tokens_spanning_units_share_their_surprisal_by_bytes() {
        let units = vec![0..4, 4..8, 8..9];
        // One token covers unit 0; one covers half of unit 1 and half of a token spans 1 and 2.
        let tokens = vec![0..4, 4..6, 6..10];
        let scores = aggregate(&units, &tokens, &[2.0, 1.0, 4.0]);
        // Unit 1: 1.0 with weight 1, 4.0 with weight 0.5 → 3.0/1.5 = 2.0.
        assert_eq!(scores, vec![Some(2.0), Some(2.0), Some(4.0)]);
        let units_without_tokens = vec![0..1, 1..2];
        assert_eq!(aggregate(&units_without_tokens, &[], &[]), vec![None, None]);
    }

    #[test]
    fn empty_span_tokens_count_in_the_unit_of_the_character_they_end() {
        // "é" (bytes 1..3) split by byte-level BPE: the second piece has the empty span 3..3.
        let units = vec![0..3, 3..4];
        let tokens = vec![0..3, 3..3, 3..4];
        assert_eq!(
            aggregate(&units, &tokens, &[1.0, 3.0, 5.0]),
            vec![Some(2.0), Some(5.0)]
        );
        assert_eq!(unit_of_token(&units, &(3..3)), 0);
        assert_eq!(unit_of_token(&units, &(3..4)), 1);
    }

    #[test]
    fn rolling_session_scores_past_the_model_context() {
        let scorer = FakeScorer::new().with_max_context(4);
        let text = "a bb ccc dddd e ff ggg hhhh i";
        let ids: Vec<u32> = scorer
            .tokenize(text)
            .unwrap()
            .iter()
            .map(|t| t.id)
            .collect();
        let mut meter = Meter::new(None);
        meter.set_total(ids.len());
        let scores = score_stream(&scorer, &ids, &mut meter).unwrap();
        assert_eq!(scores, vec![1.0, 2.0, 3.0, 4.0, 1.0, 2.0, 3.0, 4.0, 1.0]);
    }

    #[test]
    fn rolling_session_truncates_to_logical_lengths() {
        let scorer = FakeScorer::new().with_max_context(4);
        let mut meter = Meter::new(None);
        let ids: Vec<u32> = scorer
            .tokenize("a b c d e f")
            .unwrap()
            .iter()
            .map(|t| t.id)
            .collect();
        let mut session = RollingSession::new(&scorer, &mut meter).unwrap();
        session.extend(&ids, &mut meter).unwrap();
        assert_eq!(session.len(), 6);
        session.truncate(5, &mut meter).unwrap();
        assert_eq!(session.len(), 5);
        // Rolled past: the held context is gone but the logical length stays honest.
        session.truncate(1, &mut meter).unwrap();
        assert_eq!(session.len(), 1);
        session.extend(&ids[..5], &mut meter).unwrap();
        assert_eq!(session.len(), 6);
    }
}
