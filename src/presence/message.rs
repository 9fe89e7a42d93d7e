//! The gossip protocol between shards: heartbeats, transfers and the shutdown announcement.
//!
//! Every frame is an [`Envelope`] naming the shard it is for and the sender's shard count, so a
//! node configured with another shard count is refused instead of silently never meeting (a
//! topic would hash to different shards). Frames are postcard-encoded and bounded in size.

use serde::{Deserialize, Serialize};

use super::delta::{Ctx, Delta, Payload};
use super::types::ReplicaRef;
use crate::limits;

/// A protocol message between two shards of the same index.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum Message {
    /// Periodic liveness plus the latest delta (if any) and the sender's clocks (down replicas
    /// left out).
    Heartbeat {
        /// Sender.
        from: ReplicaRef,
        /// Mutations since the last heartbeat.
        delta: Option<Delta>,
        /// Sender's context without down replicas.
        clocks: Ctx,
    },
    /// "Send me what I lack": answered by a [`Message::TransferAck`].
    TransferReq {
        /// Correlation id.
        id: u64,
        /// Requester.
        from: ReplicaRef,
        /// Requester's clocks.
        clocks: Ctx,
    },
    /// The answer to a transfer request.
    TransferAck {
        /// Correlation id.
        id: u64,
        /// Sender.
        from: ReplicaRef,
        /// A fitting delta or the full state.
        payload: Payload,
    },
    /// The sender is shutting down for good: drop it at once.
    GracefulPermdown {
        /// The leaving replica.
        from: ReplicaRef,
    },
}

impl Message {
    /// The sending replica.
    pub fn from(&self) -> &ReplicaRef {
        match self {
            Message::Heartbeat { from, .. }
            | Message::TransferReq { from, .. }
            | Message::TransferAck { from, .. }
            | Message::GracefulPermdown { from } => from,
        }
    }
}

/// A message addressed to one shard index, with the sender's shard count.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Envelope {
    /// Shard index the message is for.
    pub shard: u16,
    /// The sender's shard count.
    pub shard_count: u16,
    /// The message.
    pub message: Message,
}

/// A frame could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// Larger than [`limits::MAX_PRESENCE_FRAME_BYTES`].
    #[error("presence frame of {0} bytes exceeds the limit")]
    TooLarge(usize),
    /// postcard failed.
    #[error("presence frame codec: {0}")]
    Postcard(#[from] postcard::Error),
}

impl Envelope {
    /// Encodes with postcard.
    pub fn encode(&self) -> Result<Vec<u8>, CodecError> {
        let bytes = postcard::to_stdvec(self)?;
        if bytes.len() > limits::MAX_PRESENCE_FRAME_BYTES {
            return Err(CodecError::TooLarge(bytes.len()));
        }
        Ok(bytes)
    }

    /// Decodes with postcard.
    pub fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        if bytes.len() > limits::MAX_PRESENCE_FRAME_BYTES {
            return Err(CodecError::TooLarge(bytes.len()));
        }
        Ok(postcard::from_bytes(bytes)?)
    }
}
