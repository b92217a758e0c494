//! permessage-deflate (RFC 7692) on the client's side of a connection: the
//! offer's negotiation, and the inflation of what the client compressed
//! (docs/PROTOCOL.md, "Compression").
//!
//! The hub accepts an offer only as `server_no_context_takeover;
//! client_no_context_takeover`: every message in either direction is
//! compressed on its own, so the hub keeps no compression state per
//! connection and one compressed frame serves every subscriber
//! (`fanout/deflate.rs`).
//!
//! Tungstenite, which decodes the client's frames, refuses any frame with
//! RSV1 set. [`Inflating`] sits between the socket and it: it passes every
//! frame through unchanged except a compressed message (RSV1 on its first
//! frame), which it collects, inflates and hands on as one plain frame.
//! Its bounds are tungstenite's: a frame, a compressed message and an
//! inflated message are at most `max_message` bytes (close 1009 beyond).

use axum::http::header::{HeaderMap, SEC_WEBSOCKET_EXTENSIONS};
use bytes::{Buf, BytesMut};
use flate2::{Decompress, FlushDecompress, Status};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, ReadBuf};

/// The extension as the hub answers an offer it accepts.
pub(super) const ACCEPTED: &str =
    "permessage-deflate; server_no_context_takeover; client_no_context_takeover";

/// The answer to an offer that asked for `server_max_window_bits=15`: an
/// accepted parameter is repeated in the answer (RFC 7692 §7.1.2.1).
const ACCEPTED_FULL_WINDOW: &str = "permessage-deflate; server_no_context_takeover; \
     client_no_context_takeover; server_max_window_bits=15";

/// Offers looked at, in the client's order of preference.
const MAX_OFFERS: usize = 8;

/// The hub's answer to the first offer of permessage-deflate in a form it
/// takes: parameters only among those of RFC 7692 §7.1, none twice, and
/// no `server_max_window_bits` below 15 (the hub compresses with the full
/// window); `None` when there is no such offer.
pub(super) fn answer(headers: &HeaderMap) -> Option<&'static str> {
    headers
        .get_all(SEC_WEBSOCKET_EXTENSIONS)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .take(MAX_OFFERS)
        .find_map(acceptable)
}

fn acceptable(offer: &str) -> Option<&'static str> {
    let mut parts = offer.split(';').map(str::trim);
    if parts.next() != Some("permessage-deflate") {
        return None;
    }
    let mut seen = [false; 4];
    for param in parts {
        let (name, value) = match param.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim().trim_matches('"'))),
            None => (param, None),
        };
        let (slot, ok) = match name {
            "server_no_context_takeover" => (0, value.is_none()),
            "client_no_context_takeover" => (1, value.is_none()),
            "server_max_window_bits" => (2, value == Some("15")),
            "client_max_window_bits" => (
                3,
                value.is_none_or(|v| v.parse::<u8>().is_ok_and(|b| (8..=15).contains(&b))),
            ),
            _ => return None,
        };
        if !ok || std::mem::replace(&mut seen[slot], true) {
            return None;
        }
    }
    Some(if seen[2] {
        ACCEPTED_FULL_WINDOW
    } else {
        ACCEPTED
    })
}

/// Why the client's frames were refused (the close code follows).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Refusal {
    #[error("a frame or message over the size limit")]
    TooBig,
    #[error("a compressed message that breaks RFC 7692")]
    Protocol,
}

/// The empty stored block RFC 7692 §7.2.2 has the receiver append.
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// The frame-level work of [`Inflating`], apart from any I/O (fuzzed:
/// `fuzz/fuzz_targets/ws_inflate.rs`).
pub struct Decoder {
    max_message: usize,
    /// The opcode and compressed bytes so far of a fragmented compressed
    /// message.
    pending: Option<(u8, Vec<u8>)>,
    inflater: Decompress,
}

impl Decoder {
    pub fn new(max_message: usize) -> Self {
        Decoder {
            max_message,
            pending: None,
            inflater: Decompress::new(false),
        }
    }

    /// Moves the whole frames at the front of `raw` to `out`, a compressed
    /// message once complete as one plain frame, and stops after one
    /// inflated message (call again for the rest); leaves a partial frame
    /// in `raw`.
    pub fn feed(&mut self, raw: &mut BytesMut, out: &mut BytesMut) -> Result<(), Refusal> {
        while let Some((head, len)) = frame_size(raw, self.max_message)? {
            let frame = raw.split_to(head + len);
            let (b0, masked) = (frame[0], frame[1] & 0x80 != 0);
            let (fin, rsv1, opcode) = (b0 & 0x80 != 0, b0 & 0x40 != 0, b0 & 0x0f);
            // RSV2 and RSV3 mean nothing here (RFC 6455 §5.2): on a frame
            // passed on tungstenite refuses them; on one consumed here,
            // so does this.
            let rsv23 = b0 & 0x30 != 0;
            let data = opcode == 1 || opcode == 2;
            let key = &frame[head - mask_len(masked)..head];
            if self.pending.is_none() {
                if rsv1 && data && masked {
                    // The start of a compressed message. (An unmasked one
                    // is passed on for tungstenite to refuse.)
                    if rsv23 {
                        return Err(Refusal::Protocol);
                    }
                    let payload = unmask(key, &frame[head..]);
                    if fin {
                        // One inflated message per call: what a few
                        // bytes can inflate to waits for the reader.
                        return self.emit(opcode, &payload, out);
                    } else {
                        self.pending = Some((opcode, payload));
                    }
                } else {
                    // Control frames and plain messages: as they are.
                    out.extend_from_slice(&frame);
                }
            } else if opcode == 0 {
                if rsv1 || rsv23 || !masked {
                    return Err(Refusal::Protocol);
                }
                let (_, so_far) = self.pending.as_mut().expect("pending");
                if so_far.len() + len > self.max_message {
                    return Err(Refusal::TooBig);
                }
                so_far.extend(unmask(key, &frame[head..]));
                if fin {
                    let (op, payload) = self.pending.take().expect("pending");
                    return self.emit(op, &payload, out);
                }
            } else if data {
                // A new message before the compressed one ended.
                return Err(Refusal::Protocol);
            } else {
                // A control frame in the middle of the message.
                out.extend_from_slice(&frame);
            }
        }
        Ok(())
    }

    /// Inflates `payload` and appends it to `out` as one final frame of
    /// `opcode`, masked with the zero key (a no-op) as a client frame must
    /// be.
    fn emit(&mut self, opcode: u8, payload: &[u8], out: &mut BytesMut) -> Result<(), Refusal> {
        let text = self.inflate(payload)?;
        out.extend_from_slice(&[0x80 | opcode]);
        match text.len() {
            n if n < 126 => out.extend_from_slice(&[0x80 | n as u8]),
            n if n <= usize::from(u16::MAX) => {
                out.extend_from_slice(&[0x80 | 126]);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.extend_from_slice(&[0x80 | 127]);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(&[0, 0, 0, 0]);
        out.extend_from_slice(&text);
        Ok(())
    }

    /// One message inflated on its own (no context takeover), at most
    /// `max_message` bytes of it.
    fn inflate(&mut self, payload: &[u8]) -> Result<Vec<u8>, Refusal> {
        self.inflater.reset(false);
        let mut input = Vec::with_capacity(payload.len() + TAIL.len());
        input.extend_from_slice(payload);
        input.extend_from_slice(&TAIL);
        let mut out = Vec::with_capacity((payload.len() * 4).clamp(64, self.max_message + 1));
        let start = self.inflater.total_in();
        loop {
            if out.len() == out.capacity() {
                let room = out.capacity().min(self.max_message + 1 - out.len());
                out.reserve(room);
            }
            let before = (self.inflater.total_in() - start) as usize;
            let (had, status) = (
                out.len(),
                self.inflater
                    .decompress_vec(&input[before..], &mut out, FlushDecompress::Sync)
                    .map_err(|_| Refusal::Protocol)?,
            );
            if out.len() > self.max_message {
                return Err(Refusal::TooBig);
            }
            let used = (self.inflater.total_in() - start) as usize;
            let rest = &input[used..];
            if status == Status::StreamEnd {
                // A final block inside the message: only the appended
                // tail may follow it.
                return if rest.is_empty() || rest == TAIL {
                    Ok(out)
                } else {
                    Err(Refusal::Protocol)
                };
            }
            if rest.is_empty() && out.len() < out.capacity() {
                return Ok(out);
            }
            if used == before && out.len() == had && out.len() < out.capacity() {
                // No progress with room to spare: a truncated stream.
                return Err(Refusal::Protocol);
            }
        }
    }
}

fn mask_len(masked: bool) -> usize {
    if masked {
        4
    } else {
        0
    }
}

/// The header and payload length of the whole frame at the front of
/// `raw`, or `None` while it is incomplete.
fn frame_size(raw: &[u8], max: usize) -> Result<Option<(usize, usize)>, Refusal> {
    if raw.len() < 2 {
        return Ok(None);
    }
    let mask = if raw[1] & 0x80 != 0 { 4 } else { 0 };
    let (ext, len) = match raw[1] & 0x7f {
        126 if raw.len() >= 4 => (2, u64::from(u16::from_be_bytes([raw[2], raw[3]]))),
        127 if raw.len() >= 10 => {
            let mut n = [0u8; 8];
            n.copy_from_slice(&raw[2..10]);
            (8, u64::from_be_bytes(n))
        }
        126 | 127 => return Ok(None),
        n => (0, u64::from(n)),
    };
    if len > max as u64 {
        return Err(Refusal::TooBig);
    }
    let head = 2 + ext + mask;
    Ok((raw.len() >= head + len as usize).then_some((head, len as usize)))
}

fn unmask(key: &[u8], payload: &[u8]) -> Vec<u8> {
    payload
        .iter()
        .zip(key.iter().cycle())
        .map(|(b, k)| b ^ k)
        .collect()
}

/// A client's socket as tungstenite reads it when the connection
/// negotiated compression (see the module doc).
pub(super) struct Inflating<R> {
    inner: R,
    decoder: Decoder,
    raw: BytesMut,
    ready: BytesMut,
    eof: bool,
    /// A refusal, reported once the frames decoded before it are read.
    refused: Option<Refusal>,
}

impl<R> Inflating<R> {
    /// `buffered`: bytes already read from the socket after the upgrade.
    pub(super) fn new(inner: R, buffered: &[u8], max_message: usize) -> Self {
        Inflating {
            inner,
            decoder: Decoder::new(max_message),
            raw: BytesMut::from(buffered),
            ready: BytesMut::new(),
            eof: false,
            refused: None,
        }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Inflating<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if !this.ready.is_empty() {
                let n = this.ready.len().min(buf.remaining());
                buf.put_slice(&this.ready[..n]);
                this.ready.advance(n);
                return Poll::Ready(Ok(()));
            }
            if let Some(refusal) = this.refused.take() {
                return Poll::Ready(Err(io::Error::other(refusal)));
            }
            if !this.raw.is_empty() {
                // Bytes read with the upgrade, or left by the last call:
                // decode before reading more.
                let before = this.raw.len();
                if let Err(refusal) = this.decoder.feed(&mut this.raw, &mut this.ready) {
                    this.refused = Some(refusal);
                }
                if !this.ready.is_empty() || this.refused.is_some() || this.raw.len() != before {
                    continue;
                }
            }
            if this.eof {
                // What is left is a partial frame: tungstenite reports it.
                let rest = this.raw.split();
                this.ready.extend_from_slice(&rest);
                if this.ready.is_empty() {
                    return Poll::Ready(Ok(()));
                }
                continue;
            }
            let mut chunk = [0u8; 4096];
            let mut read = ReadBuf::new(&mut chunk);
            match Pin::new(&mut this.inner).poll_read(cx, &mut read) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) if read.filled().is_empty() => this.eof = true,
                Poll::Ready(Ok(())) => this.raw.extend_from_slice(read.filled()),
            }
        }
    }
}

#[cfg(test)]
mod tests;
