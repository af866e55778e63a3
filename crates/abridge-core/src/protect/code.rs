//! Markdown code: fenced blocks and inline code spans.

use std::ops::Range;

/// Byte ranges of fenced code blocks (``` or ~~~, closed by a fence of the same character at
/// least as long, or running to the end of the text when unclosed, as in CommonMark) and of inline
/// code spans (a run of backticks closed by a run of the same length, within one paragraph).
pub fn code_ranges(text: &str) -> Vec<Range<usize>> {
    let fenced = fenced_blocks(text);
    let mut ranges = Vec::new();
    let mut outside = 0;
    for block in &fenced {
        ranges.extend(inline_code(text, outside..block.start));
        outside = block.end;
    }
    ranges.extend(inline_code(text, outside..text.len()));
    ranges.extend(fenced);
    ranges
}

/// The fence that opens or closes a block on this line: its character and length.
fn fence(line: &str) -> Option<(char, usize)> {
    let trimmed = line.trim_start();
    let c = trimmed.chars().next().filter(|c| *c == '`' || *c == '~')?;
    let len = trimmed.len() - trimmed.trim_start_matches(c).len();
    (len >= 3).then_some((c, len))
}

fn fenced_blocks(text: &str) -> Vec<Range<usize>> {
    let mut blocks = Vec::new();
    let mut open: Option<(usize, char, usize)> = None;
    let mut line_start = 0;
    for line in text.split_inclusive('\n') {
        let line_end = line_start + line.len();
        match (open, fence(line)) {
            (None, Some((c, len))) => open = Some((line_start, c, len)),
            (Some((start, c, len)), Some((close_c, close_len)))
                if close_c == c && close_len >= len && line.trim().chars().all(|x| x == c) =>
            {
                blocks.push(start..line_end);
                open = None;
            }
            _ => {}
        }
        line_start = line_end;
    }
    if let Some((start, _, _)) = open {
        blocks.push(start..text.len());
    }
    blocks
}

fn inline_code(text: &str, region: Range<usize>) -> Vec<Range<usize>> {
    let bytes = text.as_bytes();
    let run_len = |at: usize| {
        bytes[at..region.end]
            .iter()
            .take_while(|&&b| b == b'`')
            .count()
    };
    let mut spans = Vec::new();
    let mut i = region.start;
    while i < region.end {
        if bytes[i] != b'`' {
            i += 1;
            continue;
        }
        let open = run_len(i);
        let mut j = i + open;
        let mut close = None;
        while j < region.end {
            if bytes[j] == b'`' {
                let len = run_len(j);
                if len == open {
                    close = Some(j + len);
                    break;
                }
                j += len;
            } else if bytes[j..region.end].starts_with(b"\n\n") {
                break;
            } else {
                j += 1;
            }
        }
        match close {
            Some(end) => {
                spans.push(i..end);
                i = end;
            }
            None => i += open,
        }
    }
    spans
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(text: &str) -> Vec<&str> {
        let mut ranges = code_ranges(text);
        ranges.sort_by_key(|r| r.start);
        ranges.into_iter().map(|r| &text[r]).collect()
    }

    #[test]
    fn fenced_blocks_and_inline_spans() {
        let text = "Run `cargo test` then:\n```rust\nlet x = `y`;\n```\nand ``a`b`` too";
        assert_eq!(
            code(text),
            vec!["`cargo test`", "```rust\nlet x = `y`;\n```\n", "``a`b``"]
        );
    }

    #[test]
    fn unclosed_fence_runs_to_the_end_and_longer_fences_need_longer_closers() {
        assert_eq!(code("a\n~~~~\nb\n~~~\nc"), vec!["~~~~\nb\n~~~\nc"]);
    }

    #[test]
    fn unmatched_backticks_are_plain_text_and_spans_stop_at_paragraphs() {
        assert!(code("it`s fine\n\nreally`").is_empty());
    }
}
