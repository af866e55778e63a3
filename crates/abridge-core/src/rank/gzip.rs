//! Normalised compression distance (Cilibrasi & Vitányi; the "gzip" ranker of LLMLingua, after
//! Jiang et al. 2023, "Less is more: parameter-free text classification with gzip").
//!
//! `NCD(d, q) = (C(d + " " + q) − min(C(d), C(q))) / max(C(d), C(q))`, where C is the size of the
//! text compressed with DEFLATE at level 9 (what Python's `gzip.compress` does by default,
//! without gzip's constant 18-byte frame). A document that shares long substrings with the question
//! compresses well together with it; lower is more relevant. The document comes first, as in
//! LLMLingua's `get_distance_gzip`: DEFLATE then codes the question as back-references into the
//! document, which is what the distance should measure.

use miniz_oxide::deflate::compress_to_vec;

/// DEFLATE level: 9 as in `gzip.compress`.
const LEVEL: u8 = 9;

fn compressed_size(text: &str) -> usize {
    compress_to_vec(text.as_bytes(), LEVEL).len()
}

/// The compression distance of each document to `query` (lower = more relevant).
pub fn distances(documents: &[&str], query: &str) -> Vec<f64> {
    let query_size = compressed_size(query);
    documents
        .iter()
        .map(|document| {
            let document_size = compressed_size(document);
            let joint = compressed_size(&format!("{document} {query}"));
            let (small, large) = (query_size.min(document_size), query_size.max(document_size));
            if large == 0 {
                return 0.0;
            }
            (joint as f64 - small as f64) / large as f64
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_that_repeats_the_question_is_nearest() {
        let query = "what is the capital city of australia";
        let distances = distances(
            &[
                "Bananas are rich in potassium and grow in tropical climates worldwide.",
                "Canberra is the capital city of Australia, chosen as a compromise.",
                "",
            ],
            query,
        );
        assert!(distances[1] < distances[0], "{distances:?}");
        assert!(distances.iter().all(|d| d.is_finite()));
    }
}
