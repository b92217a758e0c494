//! Invariants shared by the fuzz targets (`fuzz_targets/`).

/// Longest message an error meant for a client may have, bytes.
pub const MAX_MESSAGE: usize = 300;

/// Longest run of a message that may also occur in the input. Error
/// messages echo at most 40 characters of any one piece of input
/// (`ECHO_MAX` in hub and api); the slack covers a fixed character next to
/// the echo that happens to match the input too (a key of `a a a …` after
/// `field: `).
pub const MAX_ECHO_RUN: usize = 48;

/// The fixed text error messages put around what they echo. The code
/// under test compares input against some of it (so the fuzzer learns it
/// and writes it into inputs): a run is measured between these.
const FIXED: &[&str] = &[
    "unknown variant `",
    "unknown field `",
    "`, expected",
    "`, there are no",
    "unknown field: ",
    "missing field: ",
    "malformed JSON: ",
    "invalid type: ",
    "invalid value: ",
    "body refused: ",
    "unknown op: ",
];

/// Asserts that `message` is short and repeats no more than
/// [`MAX_ECHO_RUN`] characters of `input` in one run (between the
/// [`FIXED`] pieces of text).
pub fn assert_terse(message: &str, input: &[u8]) {
    assert!(
        message.len() <= MAX_MESSAGE,
        "message over {MAX_MESSAGE} bytes: {message}"
    );
    let mut pieces = vec![message];
    for fixed in FIXED {
        pieces = pieces.iter().flat_map(|p| p.split(fixed)).collect();
    }
    for piece in pieces {
        assert_no_long_run(piece, input, message);
    }
}

fn assert_no_long_run(piece: &str, input: &[u8], message: &str) {
    let chars: Vec<(usize, char)> = piece.char_indices().collect();
    let run = MAX_ECHO_RUN + 1;
    if chars.len() < run {
        return;
    }
    for start in 0..=chars.len() - run {
        let from = chars[start].0;
        let to = chars.get(start + run).map_or(piece.len(), |&(end, _)| end);
        let window = &piece.as_bytes()[from..to];
        assert!(
            memchr::memmem::find(input, window).is_none(),
            "message echoes more than {MAX_ECHO_RUN} characters of the input: {message}"
        );
    }
}
