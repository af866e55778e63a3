//! Embedding similarity: the cosine between the question's and each document's sentence embedding
//! (LLMLingua's `sentbert`/`bge` rankers, with whichever [`Embedder`] the caller supplies, e.g.
//! all-MiniLM-L6-v2). Question and documents are embedded in one batch.

use crate::{Embedder, Error, Result};

/// The cosine similarity of each document to `query` (higher = more relevant). Vectors are
/// normalised here, so an embedder need not; a zero vector (an empty text) has similarity 0.
pub fn similarities(documents: &[&str], query: &str, embedder: &dyn Embedder) -> Result<Vec<f64>> {
    let mut texts = Vec::with_capacity(documents.len() + 1);
    texts.push(query);
    texts.extend_from_slice(documents);
    let vectors = embedder.embed(&texts)?;
    if vectors.len() != texts.len() {
        return Err(Error::Model(
            format!(
                "the embedder returned {} vectors for {} texts",
                vectors.len(),
                texts.len()
            )
            .into(),
        ));
    }
    let query = &vectors[0];
    vectors[1..]
        .iter()
        .map(|document| {
            if document.len() != query.len() {
                return Err(Error::Model(
                    format!(
                        "the embedder returned vectors of {} and {} dimensions",
                        query.len(),
                        document.len()
                    )
                    .into(),
                ));
            }
            Ok(cosine(query, document))
        })
        .collect()
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| f64::from(x) * f64::from(y))
        .sum();
    let norm = |v: &[f32]| v.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
    let norms = norm(a) * norm(b);
    if norms == 0.0 {
        0.0
    } else {
        dot / norms
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakeEmbedder;
    use crate::{BoxError, Interrupt};

    #[test]
    fn cosine_ranks_shared_words_highest() {
        let sims =
            similarities(&["red barn", "blue sea", ""], "the red barn", &FakeEmbedder).unwrap();
        assert!(sims[0] > sims[1]);
        assert_eq!(sims[2], 0.0);
    }

    struct Broken;
    impl Embedder for Broken {
        fn embed_until(
            &self,
            texts: &[&str],
            _: &dyn Interrupt,
        ) -> std::result::Result<Vec<Vec<f32>>, BoxError> {
            Ok(texts
                .iter()
                .enumerate()
                .map(|(i, _)| vec![1.0; i + 1])
                .collect())
        }
    }

    #[test]
    fn mismatched_vectors_are_model_errors() {
        assert!(matches!(
            similarities(&["a"], "q", &Broken),
            Err(Error::Model(e)) if e.to_string().contains("dimensions")
        ));
    }
}
