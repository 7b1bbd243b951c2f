// Reading a judge's output: principles, critique, and the scores of the LAST \boxed{...} after the
// Scores line. Never throws; linear time in the input length on any bytes (invalid UTF-8, NULs included).
#pragma once
#include <string_view>

#include "core/score_range.h"
#include "core/types.h"

namespace grm {

// Parses `text` written for `n_responses` responses. Scores are returned in SHOWN order (the order of the
// prompt); use map_back() to bring them to original order. On failure `valid` is false and `error` says why:
// "empty output", "no boxed scores", "wrong count: expected N, got M", "non-integer score 'x'",
// "score S out of range [lo, hi]".
//
// The contract is three parts: `Specific Criteria: ...`, `Analysis: ...`, `Scores: \boxed{s_1, ..., s_n}`.
// Headers are matched case-insensitively, may carry markdown around them (`**Scores:**`, `**Analysis**:`,
// `### Specific Criteria`), may use a full-width colon '：', and "Score:" counts as "Scores:". A header that
// starts its line (after #, >, * or _) is preferred over one in the middle of a line; a header alone on its
// line may omit the colon. Other text (`### Output:`, preambles) is ignored.
//
// Scores (checked in this order, the first failure is reported):
//  - only whitespace → "empty output".
//  - The box is the last COMPLETE `\boxed{...}` (content up to the first '}') after the last Scores header.
//    With no Scores header anywhere, the last complete box anywhere is used. With a Scores header but no
//    box after it (e.g. a truncated `Scores: \boxed{8,`), → "no boxed scores": boxes earlier in the text
//    are not trusted.
//  - The content is split on ',' and '，' (U+FF0C); tokens are trimmed. An empty box counts 0 scores, so
//    `\boxed{}` → "wrong count: expected N, got 0"; the count is checked before the values.
//  - Each token is an optional '+'/'-' and ASCII digits; anything else ("7.5", "", "8/10") →
//    "non-integer score 'x'" (x shortened to 40 bytes). Negatives are integers, so with lo ≥ 0 they are
//    "score -1 out of range [1, 10]".
//
// Principles: the text between the "Specific Criteria:" (or any "...Criteria:") header and the Analysis
// header is split into items — one per list item (`1.`, `1)`, `-`, `*`, `+`, `•`; more deeply indented or
// unmarked lines continue the item above, a preamble before the first item is dropped), else one per line,
// and a single line is split on ';' and, right after a parenthesized weight, on ',' or a list number
// ("A (Weight: 40%), B (Weight: 60%)", "1. A (40%) 2. B (60%)"). A weight is `(Weight: 40%)`, `(weight 40%)`, `(40%)`,
// `(40% weight)`, `(Weight: 0.4)` or a bare `Weight: 0.4`; stored as a fraction (0.4); a percentage or a
// bare number above 1 is divided by 100, and anything outside [0, 1] is not a weight. The principle text is
// the item without its marker, weight and "**", whitespace collapsed. No criteria section is not an error.
// Critique: the trimmed text after the Analysis header up to the Scores header (or the box when there is
// no header); empty when there is no Analysis header. Principles and critique are filled even when the
// scores are invalid.
Judgment parse_judgment(std::string_view text, int n_responses, ScoreRange range = {});

}  // namespace grm
