//! Okapi BM25, our own implementation (the reference calls `rank_bm25.BM25Okapi` on
//! whitespace-split text).
//!
//! Tokenisation ([`terms`]): lower-cased runs of letters and digits (so `"Paris,"` and `"paris"`
//! are one term and punctuation never is), an apostrophe inside a word kept (`don't`) and a
//! possessive `'s` dropped; each Han or kana character is a term of its own (those scripts have no
//! spaces); then Harman's "S" stemmer folds English plurals (`cities` → `city`, `cats` → `cat`)
//! on words longer than three letters (so `is`, `was`, `has` stay). Nothing else: no stop words
//! (BM25's idf already discounts words every document has) and no aggressive stemming (it
//! conflates names).
//!
//! Scoring: for each query term q (repeats count again, as in rank_bm25),
//! `idf(q) · f(q,D)·(k1+1) / (f(q,D) + k1·(1 − b + b·|D|/avgdl))` with k1 = 1.5, b = 0.75
//! (rank_bm25's defaults) and the always-positive Lucene idf `ln(1 + (N − n(q) + 0.5)/(n(q) + 0.5))`.
//! rank_bm25's Okapi idf `ln((N − n + 0.5)/(n + 0.5))` goes negative for terms in more than half
//! the documents (patched with an ε floor); with the handful of documents a prompt holds that is
//! most terms, so we use the variant that stays positive.

use std::collections::HashMap;

use crate::segment::is_cjk;

const K1: f64 = 1.5;
const B: f64 = 0.75;

/// The BM25 score of each document for `query` (higher = more relevant; 0 without a shared term).
pub fn scores(documents: &[&str], query: &str) -> Vec<f64> {
    let documents: Vec<Vec<String>> = documents.iter().map(|d| terms(d)).collect();
    let n = documents.len() as f64;
    let average_length =
        documents.iter().map(Vec::len).sum::<usize>() as f64 / documents.len().max(1) as f64;
    let frequencies: Vec<HashMap<&str, usize>> = documents
        .iter()
        .map(|terms| {
            let mut counts = HashMap::new();
            for term in terms {
                *counts.entry(term.as_str()).or_insert(0) += 1;
            }
            counts
        })
        .collect();
    let query = terms(query);
    let idf: HashMap<&str, f64> = query
        .iter()
        .map(|q| {
            let containing = frequencies
                .iter()
                .filter(|f| f.contains_key(q.as_str()))
                .count();
            let containing = containing as f64;
            (
                q.as_str(),
                (1.0 + (n - containing + 0.5) / (containing + 0.5)).ln(),
            )
        })
        .collect();
    documents
        .iter()
        .zip(&frequencies)
        .map(|(terms, frequency)| {
            if average_length == 0.0 {
                return 0.0;
            }
            let norm = K1 * (1.0 - B + B * terms.len() as f64 / average_length);
            query
                .iter()
                .map(|q| {
                    let f = frequency.get(q.as_str()).copied().unwrap_or(0) as f64;
                    idf[q.as_str()] * f * (K1 + 1.0) / (f + norm)
                })
                .sum()
        })
        .collect()
}

/// The BM25 terms of `text` (see the module documentation).
pub fn terms(text: &str) -> Vec<String> {
    let mut terms = Vec::new();
    let mut word = String::new();
    let mut chars = text.chars().peekable();
    let flush = |word: &mut String, terms: &mut Vec<String>| {
        if !word.is_empty() {
            terms.push(stem(&std::mem::take(word)));
        }
    };
    while let Some(c) = chars.next() {
        if is_cjk(c) {
            flush(&mut word, &mut terms);
            terms.push(c.to_string());
        } else if c.is_alphanumeric() {
            word.extend(c.to_lowercase());
        } else if matches!(c, '\'' | '’')
            && !word.is_empty()
            && chars
                .peek()
                .is_some_and(|n| n.is_alphanumeric() && !is_cjk(*n))
        {
            word.push('\'');
        } else {
            flush(&mut word, &mut terms);
        }
    }
    flush(&mut word, &mut terms);
    terms
}

/// Harman's "S" stemmer (1991) after dropping a possessive `'s`, on words over three letters.
fn stem(word: &str) -> String {
    let word = word.strip_suffix("'s").unwrap_or(word);
    if word.chars().count() <= 3 {
        return word.to_string();
    }
    if let Some(stem) = word.strip_suffix("ies") {
        if !stem.ends_with(['e', 'a']) {
            return format!("{stem}y");
        }
    }
    if let Some(stem) = word.strip_suffix("es") {
        if !stem.ends_with(['a', 'e', 'o']) {
            return format!("{stem}e");
        }
    }
    if word.ends_with('s') && !word.ends_with("us") && !word.ends_with("ss") {
        return word[..word.len() - 1].to_string();
    }
    word.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_are_lowercased_words_with_plurals_folded() {
        assert_eq!(
            terms("The CATS' owner's cities, don't (she) is U.S.-based; 東京 2024!"),
            vec![
                "the", "cat", "owner", "city", "don't", "she", "is", "u", "s", "based", "東", "京",
                "2024"
            ]
        );
        assert_eq!(
            terms("glasses bus uses shoes"),
            vec!["glasse", "bus", "use", "shoe"]
        );
        assert!(terms(" ,;! ").is_empty());
    }

    #[test]
    fn scores_match_a_hand_computed_example() {
        // Terms: D0 [the cat sat] (3), D1 [the dog sat on the mat] (6),
        // D2 [cat and dog and more cat] (6); avgdl = 5, N = 3.
        // Query [where is the cat mat]: "where", "is" occur nowhere (f = 0, no contribution).
        // idf(the) = idf(cat) = ln(1 + 1.5/2.5) = ln 1.6 = 0.470004; idf(mat) = ln(1 + 2.5/1.5)
        // = 0.980829.
        // D0: norm = 1.5·(0.25 + 0.75·3/5) = 1.05; the, cat: 2.5/2.05 = 1.219512 each
        //     → 2 · 0.470004 · 1.219512 = 1.146350.
        // D1: norm = 1.5·(0.25 + 0.75·6/5) = 1.725; the (f=2): 5/3.725 = 1.342282 · 0.470004
        //     = 0.630878; mat: 2.5/2.725 = 0.917431 · 0.980829 = 0.899843 → 1.530721.
        // D2: cat (f=2), as "the" in D1 → 0.630877.
        let scores = scores(
            &[
                "The cat sat.",
                "The dog sat on the mat",
                "Cats and dogs, and more cats!",
            ],
            "Where is the cat's mat?",
        );
        let expected = [1.146350, 1.530721, 0.630877];
        for (score, expected) in scores.iter().zip(expected) {
            assert!((score - expected).abs() < 1e-6, "{scores:?}");
        }
    }

    #[test]
    fn empty_documents_and_queries_score_zero() {
        assert_eq!(scores(&["", ""], "cat"), vec![0.0, 0.0]);
        assert_eq!(scores(&["a cat", ""], "cat")[1], 0.0);
        assert_eq!(scores(&["a cat"], ""), vec![0.0]);
        assert!(scores(&[], "cat").is_empty());
    }
}
