//! Property tests of the sans-IO frame decoder: garbage never panics, frames round-trip, any
//! split of the input decodes the same, and oversize frames are refused before allocation.

use kith::net::frame::{self, FrameDecoder, FrameError, LENGTH_PREFIX_BYTES};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

const MAX: u32 = 4096;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
enum Msg {
    Ping(u32),
    Text(String),
    Blob(Vec<u8>),
    Empty,
}

fn msg() -> impl Strategy<Value = Msg> {
    prop_oneof![
        any::<u32>().prop_map(Msg::Ping),
        ".{0,40}".prop_map(Msg::Text),
        proptest::collection::vec(any::<u8>(), 0..200).prop_map(Msg::Blob),
        Just(Msg::Empty),
    ]
}

fn encode_all(msgs: &[Msg]) -> Vec<u8> {
    msgs.iter()
        .flat_map(|m| frame::encode(m, MAX).expect("encodes"))
        .collect()
}

/// Feeds `pieces` in order and collects every decoded frame, or the first error.
fn decode_pieces(pieces: &[&[u8]]) -> Result<(Vec<Msg>, FrameDecoder), FrameError> {
    let mut decoder = FrameDecoder::new(MAX);
    let mut out = Vec::new();
    for piece in pieces {
        let mut input = *piece;
        while !input.is_empty() {
            if let Some(m) = decoder.decode::<Msg>(&mut input)? {
                out.push(m);
            }
        }
    }
    Ok((out, decoder))
}

proptest! {
    #[test]
    fn garbage_never_panics_and_errors_are_terminal(
        bytes in proptest::collection::vec(any::<u8>(), 0..600),
        cut in any::<prop::sample::Index>(),
    ) {
        let at = cut.index(bytes.len() + 1);
        let (a, b) = bytes.split_at(at);
        if let Ok((_, decoder)) = decode_pieces(&[a, b]) {
            let _ = decoder.finish();
        }
        // A decoder that failed keeps failing.
        let mut decoder = FrameDecoder::new(MAX);
        let mut input = &bytes[..];
        let mut failed = false;
        while !input.is_empty() && !failed {
            failed = decoder.decode::<Msg>(&mut input).is_err();
        }
        if failed {
            prop_assert!(matches!(decoder.decode::<Msg>(&mut &[0u8; 8][..]), Err(FrameError::Poisoned)));
        }
    }

    #[test]
    fn frames_round_trip(msgs in proptest::collection::vec(msg(), 0..8)) {
        let bytes = encode_all(&msgs);
        let (decoded, decoder) = decode_pieces(&[&bytes]).expect("decodes");
        prop_assert_eq!(decoded, msgs);
        prop_assert!(decoder.finish().is_ok());
    }

    #[test]
    fn every_split_point_decodes_the_same(msgs in proptest::collection::vec(msg(), 1..4)) {
        let bytes = encode_all(&msgs);
        for at in 0..=bytes.len() {
            let (a, b) = bytes.split_at(at);
            let (decoded, decoder) = decode_pieces(&[a, b]).expect("decodes");
            prop_assert_eq!(&decoded, &msgs);
            prop_assert!(decoder.is_idle());
        }
        let singles: Vec<&[u8]> = bytes.chunks(1).collect();
        let (decoded, _) = decode_pieces(&singles).expect("decodes byte by byte");
        prop_assert_eq!(decoded, msgs);
    }

    #[test]
    fn truncated_stream_is_unexpected_eof(msgs in proptest::collection::vec(msg(), 1..4), cut in any::<prop::sample::Index>()) {
        let bytes = encode_all(&msgs);
        let last = frame::encode(msgs.last().expect("non-empty"), MAX).expect("encodes").len();
        // Cut strictly inside the last frame.
        let at = bytes.len() - 1 - cut.index(last - 1);
        let (_, decoder) = decode_pieces(&[&bytes[..at]]).expect("a prefix is not an error");
        prop_assert!(matches!(decoder.finish(), Err(FrameError::UnexpectedEof)));
    }

    #[test]
    fn oversize_is_refused_before_allocating(len in (MAX + 1)..=u32::MAX, tail in proptest::collection::vec(any::<u8>(), 0..64)) {
        let mut bytes = len.to_be_bytes().to_vec();
        bytes.extend_from_slice(&tail);
        let mut decoder = FrameDecoder::new(MAX);
        let mut input = &bytes[..];
        let err = decoder.decode_raw(&mut input).expect_err("refused");
        let refused = matches!(err, FrameError::TooLarge { len: l, max: MAX } if l == len);
        prop_assert!(refused, "wrong error: {:?}", err);
        prop_assert_eq!(input.len(), tail.len(), "nothing past the prefix consumed");
        prop_assert_eq!(decoder.buffered_capacity(), 0);
    }
}

#[test]
fn body_buffer_grows_only_with_received_bytes() {
    let mut decoder = FrameDecoder::new(MAX);
    let mut input = &MAX.to_be_bytes()[..];
    assert!(decoder.decode_raw(&mut input).expect("prefix ok").is_none());
    assert_eq!(decoder.buffered_capacity(), 0);
    assert_eq!(decoder.wanted(), MAX as usize);
    let mut input = &[1u8; 10][..];
    assert!(decoder
        .decode_raw(&mut input)
        .expect("partial ok")
        .is_none());
    assert!(decoder.buffered_capacity() < MAX as usize / 2);
}

#[test]
fn unknown_tag_is_unknown_message_and_trailing_bytes_are_malformed() {
    let unknown = [0, 0, 0, 1, 9];
    let err = FrameDecoder::new(MAX)
        .decode::<Msg>(&mut &unknown[..])
        .expect_err("unknown");
    assert!(matches!(err, FrameError::UnknownMessage), "{err:?}");

    let trailing = [0, 0, 0, 2, 3, 0];
    let err = FrameDecoder::new(MAX)
        .decode::<Msg>(&mut &trailing[..])
        .expect_err("trailing");
    assert!(matches!(err, FrameError::Malformed(_)), "{err:?}");

    let bad_varint = [0, 0, 0, 7, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
    let err = FrameDecoder::new(MAX)
        .decode::<Msg>(&mut &bad_varint[..])
        .expect_err("varint");
    assert!(matches!(err, FrameError::Malformed(_)), "{err:?}");
}

#[test]
fn empty_stream_ends_cleanly_and_encoder_refuses_oversize() {
    assert!(FrameDecoder::new(MAX).finish().is_ok());
    let big = Msg::Blob(vec![0; MAX as usize]);
    let err = frame::encode(&big, MAX).expect_err("too large");
    assert!(matches!(err, FrameError::TooLarge { max: MAX, .. }));
    assert_eq!(LENGTH_PREFIX_BYTES, 4);
}
