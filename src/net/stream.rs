//! Async glue: frames over quinn streams, driven by the sans-IO [`FrameDecoder`].

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::frame::{self, FrameDecoder, FrameError};
use crate::limits;

/// Writes `value` as one frame; refuses values whose body exceeds [`limits::FRAME_BYTES_MAX`].
pub async fn write_frame<T: Serialize>(
    send: &mut quinn::SendStream,
    value: &T,
) -> Result<(), FrameError> {
    let bytes = frame::encode(value, limits::FRAME_BYTES_MAX)?;
    write_raw(send, &bytes).await
}

/// Writes bytes that are already one or more encoded frames.
pub async fn write_raw(send: &mut quinn::SendStream, frames: &[u8]) -> Result<(), FrameError> {
    send.write_all(frames).await.map_err(std::io::Error::from)?;
    Ok(())
}

/// Reads one frame and decodes it as `T`; `None` when the stream ended cleanly between frames.
pub async fn read_frame<T: DeserializeOwned>(
    recv: &mut quinn::RecvStream,
    max: u32,
) -> Result<Option<T>, FrameError> {
    match read_frame_raw(recv, max).await? {
        Some(body) => frame::decode_body(&body).map(Some),
        None => Ok(None),
    }
}

/// Reads one frame's body; `None` when the stream ended cleanly between frames.
///
/// It pulls exactly the bytes the decoder wants, so the next frame stays in the stream and no
/// state survives between calls.
pub async fn read_frame_raw(
    recv: &mut quinn::RecvStream,
    max: u32,
) -> Result<Option<Vec<u8>>, FrameError> {
    let mut decoder = FrameDecoder::new(max);
    loop {
        let wanted = decoder.wanted();
        let chunk = recv
            .read_chunk(wanted, true)
            .await
            .map_err(std::io::Error::from)?;
        let Some(chunk) = chunk else {
            decoder.finish()?;
            return Ok(None);
        };
        let mut input = &chunk.bytes[..];
        if let Some(body) = decoder.decode_raw(&mut input)? {
            debug_assert!(input.is_empty(), "read past the end of a frame");
            return Ok(Some(body));
        }
    }
}
