//! A finished evaluation: its configuration, rows and per-case results, as JSON and as a
//! Markdown table.

use std::fmt::Write;

use serde::{Deserialize, Serialize};

use crate::data::Split;
use crate::harness::{CaseResult, EvalMethod, Row};
use crate::suites::{Group, Suite};

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
const COLUMNS: [(&str, &str); 8] = [
    ("answer_kept", "answer kept"),
    ("generated_match", "generated answer"),
    ("generated_exact", "exact"),
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
    /// Markdown: a table of all cases, then (where cases have groups, e.g. NIAH cells) a grid of
    /// the groups.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let columns: Vec<(&str, &str)> = COLUMNS
            .into_iter()
            .filter(|(key, _)| self.rows.iter().any(|r| r.metrics.contains_key(*key)))
            .collect();
        let mut header = String::from("| method | rate | n | ");
        for (_, title) in &columns {
            let _ = write!(header, "{title} | ");
        }
        header.push_str("max over budget | s/case |");
        let _ = writeln!(out, "{header}");
        let cells = header.matches(" | ").count() + 1;
        let _ = writeln!(out, "|{}", "---|".repeat(cells));
        for row in self.rows.iter().filter(|r| r.group.is_none()) {
            let mut line = format!("| {} | {} | {} | ", row.method, rate_label(row), row.n);
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
        let quality = columns
            .iter()
            .map(|(key, _)| *key)
            .find(|k| *k != "achieved_rate");
        if let Some(metric) = quality {
            out.push_str(&self.grid(metric));
        }
        out
    }

    /// The grouped rows as a grid of `metric`: a line per method, rate and group row (NIAH:
    /// length), a cell per group column (NIAH: depth), and the line's total. Retention counts
    /// print as kept/n; other metrics as means. Empty without groups.
    pub fn grid(&self, metric: &str) -> String {
        let grouped: Vec<(&Row, &Group)> = self
            .rows
            .iter()
            .filter_map(|r| Some((r, r.group.as_ref()?)))
            .collect();
        if grouped.is_empty() {
            return String::new();
        }
        let mut columns: Vec<&str> = Vec::new();
        let mut lines: Vec<(&str, u64, &str)> = Vec::new();
        for (row, group) in &grouped {
            if !columns.contains(&group.column.as_str()) {
                columns.push(&group.column);
            }
            let line = (row.method.as_str(), row.rate.to_bits(), group.row.as_str());
            if !lines.contains(&line) {
                lines.push(line);
            }
        }
        let counts = metric == "answer_kept";
        let cell = |sum: f64, n: usize| match counts {
            true => format!("{}/{n}", sum.round()),
            false => format!("{:.3}", sum / n.max(1) as f64),
        };
        let mut out = format!("\n{metric} by group\n\n| method | rate | group | ");
        for column in &columns {
            let _ = write!(out, "{column} | ");
        }
        out.push_str("all |\n");
        let _ = writeln!(out, "|{}", "---|".repeat(columns.len() + 4));
        for (method, rate_bits, group_row) in lines {
            let members = |column: &str| {
                grouped.iter().find(|(r, g)| {
                    r.method == method
                        && r.rate.to_bits() == rate_bits
                        && g.row == group_row
                        && g.column == column
                })
            };
            let first = grouped
                .iter()
                .find(|(r, _)| r.method == method && r.rate.to_bits() == rate_bits)
                .expect("a line comes from a row")
                .0;
            let _ = write!(out, "| {method} | {} | {group_row} | ", rate_label(first));
            let (mut sum, mut n) = (0.0, 0);
            for column in &columns {
                match members(column).and_then(|(r, _)| Some((r.metrics.get(metric)?, r.n))) {
                    Some((estimate, count)) => {
                        let total = estimate.mean * count as f64;
                        sum += total;
                        n += count;
                        let _ = write!(out, "{} | ", cell(total, count));
                    }
                    None => out.push_str("– | "),
                }
            }
            let _ = writeln!(out, "{} |", cell(sum, n));
        }
        out
    }
}

/// A row's rate as printed: `1` for the original, else a fraction where it is one.
fn rate_label(row: &Row) -> String {
    if row.method == "none" {
        "1".to_string()
    } else if row.method == EvalMethod::CLOSED_BOOK {
        "0".to_string()
    } else {
        fraction(row.rate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(id: &str, depth: u32, kept: f64) -> CaseResult {
        CaseResult {
            id: id.into(),
            group: Some(Group {
                row: "1000 tokens".into(),
                column: format!("depth {depth}%"),
            }),
            method: "random".into(),
            rate: 0.5,
            origin_tokens: 10,
            compressed_tokens: 5,
            target_tokens: 5,
            protected_over_budget: false,
            metrics: [("answer_kept".to_string(), kept)].into_iter().collect(),
            seconds: 0.0,
            prompt: String::new(),
            generated: None,
        }
    }

    #[test]
    fn groups_print_as_a_grid_of_counts() {
        let results = vec![
            result("a", 0, 1.0),
            result("b", 100, 0.0),
            result("c", 100, 1.0),
        ];
        let report = Report {
            suite: Suite::Niah,
            split: Split::Test,
            seed: 0,
            scorer: "s".into(),
            evaluator: None,
            tokenizer: "t".into(),
            cases: 3,
            rows: crate::harness::summarize(&results, 10, 0),
            results,
        };
        let markdown = report.markdown();
        assert!(
            markdown.contains("| method | rate | group | depth 0% | depth 100% | all |"),
            "{markdown}"
        );
        assert!(
            markdown.contains("| random | 1/2 | 1000 tokens | 1/1 | 1/2 | 2/3 |"),
            "{markdown}"
        );
        assert!(markdown.starts_with("| method | rate | n | answer kept |"));
    }

    #[test]
    fn rates_print_as_fractions_where_they_are_ones() {
        assert_eq!(fraction(0.5), "1/2");
        assert_eq!(fraction(1.0 / 3.0), "1/3");
        assert_eq!(fraction(0.1), "1/10");
        assert_eq!(fraction(0.4), "0.400");
    }
}
