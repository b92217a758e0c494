//! Invariants shared by the fuzz targets (`fuzz_targets/`).

/// Longest message an error meant for a client may have, bytes.
pub const MAX_MESSAGE: usize = 300;

/// Longest run of a message that may also occur in the input. Error
/// messages echo at most 40 characters of any one piece of input
/// (`ECHO_MAX` in hub and api); the slack covers a fixed character next to
/// the echo that happens to match the input too (a key of `a a a …` after
/// `field: `).
pub const MAX_ECHO_RUN: usize = 48;

/// Asserts that `message` is short and repeats no more than
/// [`MAX_ECHO_RUN`] characters of `input` in one run.
pub fn assert_terse(message: &str, input: &[u8]) {
    assert!(
        message.len() <= MAX_MESSAGE,
        "message over {MAX_MESSAGE} bytes: {message}"
    );
    let chars: Vec<(usize, char)> = message.char_indices().collect();
    let run = MAX_ECHO_RUN + 1;
    if chars.len() < run {
        return;
    }
    for start in 0..=chars.len() - run {
        let from = chars[start].0;
        let to = chars
            .get(start + run)
            .map_or(message.len(), |&(end, _)| end);
        let window = &message.as_bytes()[from..to];
        assert!(
            memchr::memmem::find(input, window).is_none(),
            "message echoes more than {MAX_ECHO_RUN} characters of the input: {message}"
        );
    }
}
