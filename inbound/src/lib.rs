//! Bounds on every input that comes from outside the process (a client's
//! WebSocket frame, a REST or webhook body, an upstream venue's message, a
//! recording line, a file), checked *before* a parser sees it.
//!
//! Parsers are recursive (serde, simd-json) or allocate per element, so an
//! input that is small in bytes can still exhaust a thread's stack (a frame
//! of 4,000 `[` once aborted the whole process) or the heap. A
//! [`json::JsonBounds`] check is one linear pass with constant memory and no
//! recursion: it refuses a document that is too large, nests too deeply or
//! holds too many values, whatever the parser that follows.
//!
//! Each parser declares its own bounds next to itself (see
//! `docs/SECURITY.md`, "Input bounds", for the table of all of them).

pub mod json;

pub use json::{BoundsError, JsonBounds};
