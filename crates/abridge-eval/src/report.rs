//! A finished evaluation: its configuration, rows and per-case results, as JSON and as a
//! Markdown table.

use std::fmt::Write;

use serde::{Deserialize, Serialize};

use crate::data::Split;
use crate::harness::{CaseResult, Row};
use crate::suites::Suite;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub suite: Suite,
    pub split: Split,
    pub seed: u64,
    /// The compressors' scoring model.
    pub scorer: String,
    /// The evaluator LM of the likelihood metrics, if one was used.
    pub evaluator: Option<String>,
    /// The target LLM's tokenizer that rates are counted in.
    pub tokenizer: String,
    pub cases: usize,
    pub rows: Vec<Row>,
    pub results: Vec<CaseResult>,
}

/// Column titles of the metrics, in display order.
const COLUMNS: [(&str, &str); 6] = [
    ("answer_kept", "answer kept"),
    ("numbers_kept", "numbers kept"),
    ("rouge1_recall", "ROUGE-1 recall"),
    ("rougeL_recall", "ROUGE-L recall"),
    ("ll_gain", "LL gain G"),
    ("achieved_rate", "achieved rate"),
];

fn fraction(rate: f64) -> String {
    let inverse = 1.0 / rate;
    if (inverse - inverse.round()).abs() < 1e-9 && inverse.round() > 1.0 {
        format!("1/{}", inverse.round())
    } else {
        format!("{rate:.3}")
    }
}

impl Report {
    /// Markdown tables: all cases, then (where cases have groups, e.g. NIAH cells) per group.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let columns: Vec<(&str, &str)> = COLUMNS
            .into_iter()
            .filter(|(key, _)| self.rows.iter().any(|r| r.metrics.contains_key(*key)))
            .collect();
        let overall: Vec<&Row> = self.rows.iter().filter(|r| r.group.is_none()).collect();
        let grouped: Vec<&Row> = self.rows.iter().filter(|r| r.group.is_some()).collect();
        for (rows, with_group) in [(overall, false), (grouped, true)] {
            if rows.is_empty() {
                continue;
            }
            if with_group {
                out.push('\n');
            }
            let mut header = String::from("| ");
            if with_group {
                header.push_str("group | ");
            }
            header.push_str("method | rate | n | ");
            for (_, title) in &columns {
                let _ = write!(header, "{title} | ");
            }
            header.push_str("max over budget | s/case |");
            let _ = writeln!(out, "{header}");
            let cells = header.matches(" | ").count() + 1;
            let _ = writeln!(out, "|{}", "---|".repeat(cells));
            for row in rows {
                let mut line = String::from("| ");
                if let Some(group) = &row.group {
                    let _ = write!(line, "{group} | ");
                }
                let rate = if row.method == "none" {
                    "1".to_string()
                } else {
                    fraction(row.rate)
                };
                let _ = write!(line, "{} | {rate} | {} | ", row.method, row.n);
                for (key, _) in &columns {
                    match row.metrics.get(*key) {
                        Some(e) => {
                            let _ = write!(line, "{:.3} [{:.3}, {:.3}] | ", e.mean, e.low, e.high);
                        }
                        None => line.push_str("– | "),
                    }
                }
                let over = if row.max_over_budget.is_finite() {
                    format!("{:+.1}%", 100.0 * row.max_over_budget)
                } else {
                    "–".to_string()
                };
                let protected = if row.protected_over_budget > 0 {
                    format!(" ({} verbatim over)", row.protected_over_budget)
                } else {
                    String::new()
                };
                let _ = writeln!(line, "{over}{protected} | {:.2} |", row.mean_seconds);
                out.push_str(&line);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_print_as_fractions_where_they_are_ones() {
        assert_eq!(fraction(0.5), "1/2");
        assert_eq!(fraction(1.0 / 3.0), "1/3");
        assert_eq!(fraction(0.1), "1/10");
        assert_eq!(fraction(0.4), "0.400");
    }
}
