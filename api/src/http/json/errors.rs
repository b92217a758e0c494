//! serde's errors as the API's: which field, which code (400
//! `unknown_field` / `bad_request`, 422 `missing_field` /
//! `invalid_field`), with every piece of the client's input cut to
//! [`ECHO_MAX`] characters.

use crate::error::ApiError;

/// Longest piece of client input (a field name, a value) an error message
/// repeats; longer ones are cut and end in `…`.
pub const ECHO_MAX: usize = 40;
/// `text` cut to [`ECHO_MAX`] characters (then `…`).
pub fn clip(text: &str) -> String {
    match text.char_indices().nth(ECHO_MAX) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// A serde message with the piece of input it repeats cut by [`clip`].
///
/// serde puts a variant or field name it read between backquotes as it
/// is (a name may hold backquotes itself: the closing one is the last
/// before serde's own `, expected`), a string value between double quotes
/// Debug-escaped, and numbers between backquotes.
pub(super) fn clip_quoted(message: &str) -> String {
    for prefix in ["unknown variant `", "unknown field `"] {
        if let Some(rest) = message.strip_prefix(prefix) {
            let end = ["`, expected", "`, there are no"]
                .iter()
                .filter_map(|suffix| rest.rfind(suffix))
                .max()
                .unwrap_or(rest.len());
            return format!("{prefix}{}{}", clip(&rest[..end]), &rest[end..]);
        }
    }
    let mut out = String::with_capacity(message.len().min(256));
    let mut rest = message;
    while let Some(open) = rest.find(['`', '"']) {
        let quote = rest.as_bytes()[open] as char;
        out.push_str(&rest[..=open]);
        rest = &rest[open + 1..];
        // A `"` inside a Debug-escaped string is `\"`: skip escapes.
        let mut close = None;
        let mut escaped = false;
        for (i, c) in rest.char_indices() {
            match c {
                '\\' if quote == '"' && !escaped => escaped = true,
                c if c == quote && !escaped => {
                    close = Some(i);
                    break;
                }
                _ => escaped = false,
            }
        }
        let end = close.unwrap_or(rest.len());
        out.push_str(&clip(&rest[..end]));
        match close {
            Some(end) => {
                out.push(quote);
                rest = &rest[end + 1..];
            }
            None => rest = "",
        }
    }
    out.push_str(rest);
    out
}
/// Maps a serde error to (status, code) naming the field.
pub(super) fn classify(
    path: &str,
    message: &str,
    category: serde_json::error::Category,
) -> ApiError {
    use serde_json::error::Category;
    // serde's messages: "unknown field `x`, expected ...", "missing field `x`".
    let quoted = |msg: &str| msg.split('`').nth(1).map(str::to_owned);
    // serde_path_to_error's path already ends at an unknown field, and
    // stops at the parent of a missing one. A path is made of the
    // client's field names: cut.
    let at = |field: Option<String>| -> String {
        let root = path.is_empty() || path == ".";
        clip(&match field {
            Some(f) if root => f,
            Some(f) if path == f || path.ends_with(&format!(".{f}")) => path.to_owned(),
            Some(f) => format!("{path}.{f}"),
            None => path.to_owned(),
        })
    };
    // Strip serde's " at line 1 column 9" suffix: positions mean nothing to clients.
    let plain = message.split(" at line ").next().unwrap_or(message);
    match category {
        Category::Syntax | Category::Eof | Category::Io => ApiError::bad_request(
            "bad_request",
            format!("malformed JSON: {}", clip_quoted(plain)),
        ),
        Category::Data if plain.starts_with("unknown field") => {
            let field = at(quoted(plain));
            ApiError::bad_request("unknown_field", format!("unknown field: {field}"))
        }
        Category::Data if plain.starts_with("missing field") => {
            let field = at(quoted(plain));
            ApiError::unprocessable("missing_field", format!("missing field: {field}"))
        }
        Category::Data => {
            let field = if path.is_empty() || path == "." {
                "body".to_owned()
            } else {
                clip(path)
            };
            ApiError::invalid_field(&field, clip_quoted(plain))
        }
    }
}
