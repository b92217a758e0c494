use super::*;
use axum::http::HeaderValue;
use flate2::{Compress, Compression, FlushCompress};

fn offers(values: &[&str]) -> bool {
    let mut h = HeaderMap::new();
    for v in values {
        h.append(SEC_WEBSOCKET_EXTENSIONS, HeaderValue::from_str(v).unwrap());
    }
    answer(&h).is_some()
}

#[test]
fn an_accepted_server_max_window_bits_is_repeated_in_the_answer() {
    let mut h = HeaderMap::new();
    h.append(
        SEC_WEBSOCKET_EXTENSIONS,
        HeaderValue::from_static("permessage-deflate; server_max_window_bits=15"),
    );
    assert_eq!(answer(&h), Some(ACCEPTED_FULL_WINDOW));
    assert!(ACCEPTED_FULL_WINDOW.ends_with("; server_max_window_bits=15"));
    let mut h = HeaderMap::new();
    h.append(
        SEC_WEBSOCKET_EXTENSIONS,
        HeaderValue::from_static("permessage-deflate; client_max_window_bits"),
    );
    assert_eq!(answer(&h), Some(ACCEPTED));
}

#[test]
fn offers_the_hub_takes_and_those_it_declines() {
    // Chromium's and Python websockets' default offers.
    assert!(offers(&["permessage-deflate; client_max_window_bits"]));
    assert!(offers(&[
        "permessage-deflate; server_no_context_takeover; client_max_window_bits=12"
    ]));
    assert!(offers(&["x-webkit-deflate-frame", "permessage-deflate"]));
    assert!(offers(&[
        "foo, permessage-deflate; server_max_window_bits=15"
    ]));
    assert!(!offers(&[]));
    assert!(!offers(&["permessage-deflate; server_max_window_bits=10"]));
    assert!(!offers(&["permessage-deflate; mystery"]));
    assert!(!offers(&["permessage-deflate; client_max_window_bits=7"]));
    assert!(!offers(&[
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover"
    ]));
    assert!(!offers(&[
        "permessage-deflate; server_no_context_takeover=1"
    ]));
}

/// What a client sends: `payload` compressed on its own, tail removed.
fn deflated(payload: &[u8]) -> Vec<u8> {
    let mut c = Compress::new(Compression::default(), false);
    let mut out = Vec::with_capacity(payload.len() + 64);
    c.compress_vec(payload, &mut out, FlushCompress::Sync)
        .unwrap();
    assert!(out.ends_with(&TAIL));
    out.truncate(out.len() - 4);
    out
}

fn client_frame(b0: u8, payload: &[u8], key: [u8; 4]) -> Vec<u8> {
    let mut f = vec![b0];
    match payload.len() {
        n if n < 126 => f.push(0x80 | n as u8),
        n => {
            f.push(0x80 | 126);
            f.extend((n as u16).to_be_bytes());
        }
    }
    f.extend(key);
    f.extend(payload.iter().zip(key.iter().cycle()).map(|(b, k)| b ^ k));
    f
}

fn plain(opcode: u8, text: &[u8]) -> Vec<u8> {
    client_frame(0x80 | opcode, text, [0; 4])
}

/// Feeds `input` until the decoder takes no more.
fn run(decoder: &mut Decoder, input: &[u8]) -> Result<Vec<u8>, Refusal> {
    let mut raw = BytesMut::from(input);
    let mut out = BytesMut::new();
    loop {
        let before = raw.len();
        decoder.feed(&mut raw, &mut out)?;
        if raw.is_empty() || raw.len() == before {
            break;
        }
    }
    assert!(raw.is_empty(), "whole frames in, none left");
    Ok(out.to_vec())
}

#[test]
fn one_call_inflates_one_message_and_leaves_the_next() {
    let frame = client_frame(0xc1, &deflated(OP.as_bytes()), [2, 4, 6, 8]);
    let mut raw = BytesMut::from(&[frame.clone(), frame][..].concat()[..]);
    let mut out = BytesMut::new();
    let mut d = Decoder::new(16 * 1024);
    d.feed(&mut raw, &mut out).unwrap();
    assert_eq!(out.to_vec(), plain(1, OP.as_bytes()));
    assert!(!raw.is_empty(), "the second message waits");
    d.feed(&mut raw, &mut out).unwrap();
    assert!(raw.is_empty());
    assert_eq!(
        out.to_vec(),
        [plain(1, OP.as_bytes()), plain(1, OP.as_bytes())].concat()
    );
}

#[test]
fn rsv2_or_rsv3_on_a_compressed_message_is_refused() {
    let packed = deflated(OP.as_bytes());
    for b0 in [0xe1, 0xd1] {
        let frame = client_frame(b0, &packed, [1, 1, 1, 1]);
        assert_eq!(
            run(&mut Decoder::new(16 * 1024), &frame),
            Err(Refusal::Protocol)
        );
    }
}

const OP: &str =
    r#"{"op":"subscribe","id":1,"channels":["book.BTC-USD","trades.BTC-USD","ticker.BTC-USD"]}"#;

#[test]
fn a_compressed_message_becomes_the_plain_frame() {
    let frame = client_frame(0xc1, &deflated(OP.as_bytes()), [7, 1, 250, 9]);
    let out = run(&mut Decoder::new(16 * 1024), &frame).unwrap();
    assert_eq!(out, plain(1, OP.as_bytes()));
}

#[test]
fn plain_and_control_frames_pass_unchanged() {
    let mut input = client_frame(0x81, OP.as_bytes(), [1, 2, 3, 4]);
    input.extend(client_frame(0x89, b"ping", [5, 6, 7, 8]));
    input.extend(client_frame(0x88, &[0x03, 0xe8], [9, 9, 9, 9]));
    let out = run(&mut Decoder::new(16 * 1024), &input).unwrap();
    assert_eq!(out, input);
}

#[test]
fn a_fragmented_compressed_message_is_joined_around_a_ping() {
    let packed = deflated(OP.as_bytes());
    let (a, b) = packed.split_at(packed.len() / 2);
    let mut input = client_frame(0x41, a, [3, 3, 3, 3]); // RSV1, not FIN
    let ping = client_frame(0x89, b"p", [4, 4, 4, 4]);
    input.extend(&ping);
    input.extend(client_frame(0x80, b, [5, 5, 5, 5])); // continuation, FIN
    let out = run(&mut Decoder::new(16 * 1024), &input).unwrap();
    let mut expected = ping.clone();
    expected.extend(plain(1, OP.as_bytes()));
    assert_eq!(out, expected);
}

#[test]
fn a_partial_frame_waits_for_the_rest() {
    let frame = client_frame(0xc1, &deflated(OP.as_bytes()), [1, 1, 1, 1]);
    let mut d = Decoder::new(16 * 1024);
    let mut raw = BytesMut::from(&frame[..frame.len() - 3]);
    let mut out = BytesMut::new();
    d.feed(&mut raw, &mut out).unwrap();
    assert!(out.is_empty());
    raw.extend_from_slice(&frame[frame.len() - 3..]);
    d.feed(&mut raw, &mut out).unwrap();
    assert_eq!(out.to_vec(), plain(1, OP.as_bytes()));
}

#[test]
fn a_message_that_inflates_past_the_limit_is_refused() {
    let bomb = deflated(&vec![b' '; 1 << 20]);
    assert!(bomb.len() < 16 * 1024, "{} bytes", bomb.len());
    let mut input = Vec::new();
    for (i, part) in bomb.chunks(60_000).enumerate() {
        input.extend(client_frame(
            if i == 0 { 0x41 } else { 0x00 },
            part,
            [1, 2, 3, 4],
        ));
    }
    // One frame for a small bomb: FIN on it.
    input[0] |= 0x80;
    assert_eq!(
        run(&mut Decoder::new(16 * 1024), &input),
        Err(Refusal::TooBig)
    );
}

#[test]
fn frames_over_the_limit_are_refused_before_they_arrive() {
    let mut header = vec![0xc1, 0x80 | 127];
    header.extend((1u64 << 40).to_be_bytes());
    let mut raw = BytesMut::from(&header[..]);
    let mut out = BytesMut::new();
    assert_eq!(
        Decoder::new(16 * 1024).feed(&mut raw, &mut out),
        Err(Refusal::TooBig)
    );
}

#[test]
fn broken_compressed_messages_are_refused() {
    let packed = deflated(OP.as_bytes());
    let start = client_frame(0x41, &packed, [1, 1, 1, 1]);
    // RSV1 on a continuation.
    let mut input = start.clone();
    input.extend(client_frame(0xc0, b"x", [1, 1, 1, 1]));
    assert_eq!(
        run(&mut Decoder::new(16 * 1024), &input),
        Err(Refusal::Protocol)
    );
    // A new message before the end of the compressed one.
    let mut input = start;
    input.extend(client_frame(0x81, b"{}", [1, 1, 1, 1]));
    assert_eq!(
        run(&mut Decoder::new(16 * 1024), &input),
        Err(Refusal::Protocol)
    );
    // Not deflate data at all.
    let junk = client_frame(0xc1, &[0xff; 40], [0, 0, 0, 0]);
    assert_eq!(
        run(&mut Decoder::new(16 * 1024), &junk),
        Err(Refusal::Protocol)
    );
}
