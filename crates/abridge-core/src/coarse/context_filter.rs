//! The context-level filter: which documents fit the coarse budget.

/// Takes documents until `budget` tokens are spent: forced ones first (they pay for themselves),
/// then the others in `ranked` order; the document whose size crosses the budget is still taken
/// (as in LLMLingua, so a small budget keeps at least the best document). Returns which documents
/// are kept.
pub fn take_within_budget(
    ranked: &[usize],
    forced: &[bool],
    sizes: &[usize],
    budget: f64,
) -> Vec<bool> {
    let mut remaining = budget;
    let mut kept = vec![false; sizes.len()];
    for document in (0..sizes.len())
        .filter(|&d| forced[d])
        .chain(ranked.iter().copied())
    {
        if kept[document] || (remaining < 0.0 && !forced[document]) {
            continue;
        }
        kept[document] = true;
        remaining -= sizes[document] as f64;
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_by_rank_until_the_budget_is_crossed() {
        // Ranked 2, 0, 1, 3; sizes 10 each; budget 15: 2 (5 left), 0 (crosses) and stop.
        let kept = take_within_budget(&[2, 0, 1, 3], &[false; 4], &[10; 4], 15.0);
        assert_eq!(kept, [true, false, true, false]);
        // A budget of 0 still takes the best document; a huge one takes all.
        assert_eq!(
            take_within_budget(&[1, 0], &[false; 2], &[5, 5], 0.0),
            [false, true]
        );
        assert_eq!(
            take_within_budget(&[1, 0], &[false; 2], &[5, 5], 1e9),
            [true, true]
        );
    }

    #[test]
    fn forced_documents_are_kept_and_pay_for_themselves() {
        // Document 3 is forced: it spends 10 of 15 first, then rank 2 crosses the budget.
        let kept = take_within_budget(&[2, 0, 1, 3], &[false, false, false, true], &[10; 4], 15.0);
        assert_eq!(kept, [false, false, true, true]);
        let kept = take_within_budget(&[0, 1], &[true, true], &[10, 10], 0.0);
        assert_eq!(kept, [true, true]);
    }
}
