//! Length-prefixed postcard frames, sans-IO.
//!
//! A frame is a `u32` big-endian body length followed by a postcard body. The length is checked
//! against the caller's bound **before** any body byte is buffered, and the body buffer only grows
//! with bytes actually received, so a peer cannot make us allocate for a frame it never sends.
//!
//! Decoding is strict: a body must decode to exactly one value with no trailing bytes. A body
//! whose enum tag is unknown is reported apart from plain garbage, since the first usually means
//! a newer peer and the second a broken one. Every error maps to a [`CloseCode`]. Errors are
//! terminal: after one, the decoder only answers [`FrameError::Poisoned`].

use std::io;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::close::{peer_close_code, CloseCode};

/// Bytes in the length prefix.
pub const LENGTH_PREFIX_BYTES: usize = 4;

/// What went wrong reading or writing a frame.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The length prefix announced more than the bound allows.
    #[error("frame of {len} bytes exceeds the {max}-byte bound")]
    TooLarge {
        /// Announced (or, when writing, encoded) body length.
        len: u32,
        /// The bound in force.
        max: u32,
    },
    /// The body did not decode, or decoded with bytes left over.
    #[error("malformed frame: {0}")]
    Malformed(&'static str),
    /// The body names a message kind this node does not know: an enum tag out of range (a newer
    /// peer), or a value its type refuses (postcard cannot tell the two apart).
    #[error("unknown message kind")]
    UnknownMessage,
    /// The stream ended in the middle of a frame.
    #[error("stream ended inside a frame")]
    UnexpectedEof,
    /// A value could not be encoded (postcard refused it).
    #[error("cannot encode frame: {0}")]
    Encode(#[source] postcard::Error),
    /// Reading or writing the stream failed (reset, connection lost, ...).
    #[error("stream i/o: {0}")]
    Io(#[from] io::Error),
    /// An earlier error ended this decoder; the connection should already be closing.
    #[error("decoder already failed")]
    Poisoned,
}

impl FrameError {
    /// The code to close the connection with, or `None` when the transport itself failed and
    /// there is nothing left to tell the peer.
    pub fn close_code(&self) -> Option<CloseCode> {
        match self {
            Self::TooLarge { .. } => Some(CloseCode::FrameTooLarge),
            Self::Malformed(_) | Self::Poisoned => Some(CloseCode::FrameMalformed),
            Self::UnknownMessage => Some(CloseCode::UnknownMessage),
            Self::UnexpectedEof => Some(CloseCode::FrameTruncated),
            Self::Encode(_) | Self::Io(_) => None,
        }
    }

    /// If the stream failed because the peer closed the connection with one of our codes, that code.
    pub fn peer_close_code(&self) -> Option<CloseCode> {
        let Self::Io(err) = self else { return None };
        let inner = err.get_ref()?;
        let conn_err = match (
            inner.downcast_ref::<quinn::ReadError>(),
            inner.downcast_ref::<quinn::WriteError>(),
        ) {
            (Some(quinn::ReadError::ConnectionLost(e)), _) => e,
            (_, Some(quinn::WriteError::ConnectionLost(e))) => e,
            _ => return None,
        };
        peer_close_code(conn_err)
    }
}

/// Encodes `value` as one frame (prefix and body); refuses bodies over `max` bytes.
pub fn encode<T: Serialize>(value: &T, max: u32) -> Result<Vec<u8>, FrameError> {
    let mut frame = vec![0u8; LENGTH_PREFIX_BYTES];
    frame = postcard::to_extend(value, frame).map_err(FrameError::Encode)?;
    let body = frame.len() - LENGTH_PREFIX_BYTES;
    let len = u32::try_from(body).unwrap_or(u32::MAX);
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    frame[..LENGTH_PREFIX_BYTES].copy_from_slice(&len.to_be_bytes());
    Ok(frame)
}

/// Decodes one complete frame body strictly: exactly one `T`, no trailing bytes.
pub fn decode_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, FrameError> {
    match postcard::take_from_bytes::<T>(body) {
        Ok((value, [])) => Ok(value),
        Ok(_) => Err(FrameError::Malformed("trailing bytes after the message")),
        // serde-derived enums report an out-of-range tag through `de::Error::invalid_value`,
        // which postcard turns into `SerdeDeCustom` (its own `DeserializeBadEnum` is rarer).
        Err(postcard::Error::DeserializeBadEnum | postcard::Error::SerdeDeCustom) => {
            Err(FrameError::UnknownMessage)
        }
        Err(postcard::Error::DeserializeUnexpectedEnd) => {
            Err(FrameError::Malformed("body shorter than its message"))
        }
        Err(_) => Err(FrameError::Malformed("body does not decode")),
    }
}

/// Where the decoder is within the current frame.
#[derive(Debug)]
enum State {
    /// Reading the length prefix; `filled` bytes of it have arrived.
    Header {
        prefix: [u8; LENGTH_PREFIX_BYTES],
        filled: usize,
    },
    /// Reading a body of `len` bytes (already checked against the bound).
    Body { len: usize, body: Vec<u8> },
    /// A previous error ended the decoder.
    Failed,
}

/// Sans-IO frame decoder: bytes in, frame bodies (or typed frames) out.
///
/// It never consumes past the end of the current frame, and [`FrameDecoder::wanted`] says how
/// many bytes would complete the current step, so a reader can pull exactly that much from a
/// stream and leave the next frame's bytes in place.
#[derive(Debug)]
pub struct FrameDecoder {
    max: u32,
    state: State,
}

impl FrameDecoder {
    /// A decoder that refuses bodies longer than `max` bytes.
    pub fn new(max: u32) -> Self {
        Self {
            max,
            state: Self::fresh(),
        }
    }

    const fn fresh() -> State {
        State::Header {
            prefix: [0; LENGTH_PREFIX_BYTES],
            filled: 0,
        }
    }

    /// Bytes that would complete the current step (the prefix, or the rest of the body).
    /// Zero only once the decoder has failed.
    pub fn wanted(&self) -> usize {
        match &self.state {
            State::Header { filled, .. } => LENGTH_PREFIX_BYTES - filled,
            State::Body { len, body } => len - body.len(),
            State::Failed => 0,
        }
    }

    /// True between frames: ending the stream here is a clean end.
    pub fn is_idle(&self) -> bool {
        matches!(self.state, State::Header { filled: 0, .. })
    }

    /// Bytes of memory the decoder holds for the current frame's body.
    pub fn buffered_capacity(&self) -> usize {
        match &self.state {
            State::Body { body, .. } => body.capacity(),
            _ => 0,
        }
    }

    /// Call at the end of the stream: clean between frames, [`FrameError::UnexpectedEof`] inside one.
    pub fn finish(&self) -> Result<(), FrameError> {
        match self.state {
            State::Failed => Err(FrameError::Poisoned),
            _ if self.is_idle() => Ok(()),
            _ => Err(FrameError::UnexpectedEof),
        }
    }

    /// Consumes bytes from the front of `input` up to the end of the current frame; returns the
    /// frame's body once complete. Leaves any following bytes in `input`.
    pub fn decode_raw(&mut self, input: &mut &[u8]) -> Result<Option<Vec<u8>>, FrameError> {
        let result = self.step(input);
        if result.is_err() {
            self.state = State::Failed;
        }
        result
    }

    /// Like [`FrameDecoder::decode_raw`], then decodes the body strictly as a `T`.
    pub fn decode<T: DeserializeOwned>(
        &mut self,
        input: &mut &[u8],
    ) -> Result<Option<T>, FrameError> {
        let Some(body) = self.decode_raw(input)? else {
            return Ok(None);
        };
        decode_body(&body)
            .inspect_err(|_| self.state = State::Failed)
            .map(Some)
    }

    fn step(&mut self, input: &mut &[u8]) -> Result<Option<Vec<u8>>, FrameError> {
        loop {
            match &mut self.state {
                State::Failed => return Err(FrameError::Poisoned),
                State::Header { prefix, filled } => {
                    let take = (LENGTH_PREFIX_BYTES - *filled).min(input.len());
                    prefix[*filled..*filled + take].copy_from_slice(&input[..take]);
                    *filled += take;
                    *input = &input[take..];
                    if *filled < LENGTH_PREFIX_BYTES {
                        return Ok(None);
                    }
                    let len = u32::from_be_bytes(*prefix);
                    if len > self.max {
                        return Err(FrameError::TooLarge { len, max: self.max });
                    }
                    // Lossless: a u32 fits in usize on every target quinn supports.
                    self.state = State::Body {
                        len: len as usize,
                        body: Vec::new(),
                    };
                }
                State::Body { len, body } => {
                    let take = (*len - body.len()).min(input.len());
                    body.extend_from_slice(&input[..take]);
                    *input = &input[take..];
                    if body.len() < *len {
                        return Ok(None);
                    }
                    let body = std::mem::take(body);
                    self.state = Self::fresh();
                    return Ok(Some(body));
                }
            }
        }
    }
}
