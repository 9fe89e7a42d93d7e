//! The outer transport for a connection that carries relayed packets.
//!
//! An inner QUIC packet is at least 1200 bytes (client Initials are padded to it), so an outer
//! datagram must hold `1200 + 32` bytes. quinn's default initial MTU of 1200 leaves about 1162, so
//! the inner handshake could not start until MTU discovery raised it. Relay links therefore start
//! (and stay, `min_mtu`) at [`limits::RELAY_OUTER_INITIAL_MTU`]; MTU discovery still raises it,
//! with one probe of [`limits::RELAY_OUTER_MTU_CEILING`] rather than a binary search. A
//! path that cannot carry that much cannot relay QUIC by datagrams at all: [`check_link`] tells.

use std::sync::Arc;

use ed25519_dalek::{SigningKey, VerifyingKey};
use quinn::{MtuDiscoveryConfig, TransportConfig, VarInt};

use crate::limits;
use crate::net::endpoint::{client_config, server_config, transport_config};
use crate::net::NetError;

/// Why an outer connection cannot carry relayed packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkCheckError {
    /// The peer or the local config disabled datagrams.
    #[error("the outer connection carries no datagrams")]
    NoDatagrams,
    /// The largest datagram cannot hold a 1200-byte inner packet plus the key header.
    #[error("outer datagrams of {0} bytes cannot carry a 1200-byte inner packet and its header")]
    TooSmall(usize),
}

/// The kith transport with the relay link's MTU floor and its few streams. quinn keeps a table
/// entry per stream the peer may open, for the connection's life, so a switchboard holding
/// thousands of links allows only what a link uses: the hello stream, and one presence stream
/// each way between cluster nodes.
pub fn outer_transport_config() -> Result<TransportConfig, NetError> {
    let mut transport = transport_config()?;
    let mut discovery = MtuDiscoveryConfig::default();
    discovery
        .upper_bound(limits::RELAY_OUTER_MTU_CEILING)
        .minimum_change(limits::RELAY_OUTER_MTU_STEP);
    transport
        .initial_mtu(limits::RELAY_OUTER_INITIAL_MTU)
        .min_mtu(limits::RELAY_OUTER_INITIAL_MTU)
        .mtu_discovery_config(Some(discovery))
        .max_concurrent_bidi_streams(VarInt::from_u32(limits::SB_STREAMS_BIDI_MAX))
        .max_concurrent_uni_streams(VarInt::from_u32(limits::SB_STREAMS_UNI_MAX));
    Ok(transport)
}

/// The switchboard's server config for `key` with the relay link transport. A client's datagram
/// send buffer is the relay's queue towards that client ([`limits::RELAY_CLIENT_QUEUE_BYTES`]).
///
/// The switchboard sends no keep-alives: its clients do (they are the ones behind NATs), and
/// the switchboard's acknowledgements of their pings are traffic enough to hold the NAT mapping
/// and its own idle timer. With thousands of idle clients this halves the keep-alive packets.
pub fn outer_server_config(key: &SigningKey) -> Result<quinn::ServerConfig, NetError> {
    let mut config = server_config(key)?;
    let mut transport = outer_transport_config()?;
    transport
        .datagram_send_buffer_size(limits::RELAY_CLIENT_QUEUE_BYTES)
        .keep_alive_interval(None);
    config.transport_config(Arc::new(transport));
    Ok(config)
}

/// A peer's client config towards the switchboard `expected`, with the relay link transport.
pub fn outer_client_config(
    key: &SigningKey,
    expected: VerifyingKey,
) -> Result<quinn::ClientConfig, NetError> {
    let mut config = client_config(key, expected)?;
    config.transport_config(Arc::new(outer_transport_config()?));
    Ok(config)
}

/// A daemon's client config towards its switchboard `expected`: the relay link transport with
/// keep-alives every [`limits::SB_LINK_KEEP_ALIVE`] and an idle timeout of
/// [`limits::SB_LINK_IDLE_TIMEOUT`], so a node that dies is noticed (and the daemon moves to
/// another member of its cluster) within seconds rather than the peer connections' timeout.
pub fn uplink_client_config(
    key: &SigningKey,
    expected: VerifyingKey,
) -> Result<quinn::ClientConfig, NetError> {
    let mut config = client_config(key, expected)?;
    let mut transport = outer_transport_config()?;
    let idle = quinn::IdleTimeout::try_from(limits::SB_LINK_IDLE_TIMEOUT)
        .map_err(|_| NetError::Config("the uplink idle timeout is out of range"))?;
    transport
        .keep_alive_interval(Some(limits::SB_LINK_KEEP_ALIVE))
        .max_idle_timeout(Some(idle));
    config.transport_config(Arc::new(transport));
    Ok(config)
}

/// Checks that `conn` can carry relayed packets now (its datagram size changes with the path).
pub fn check_link(conn: &quinn::Connection) -> Result<(), LinkCheckError> {
    let needed = limits::RELAY_INNER_PACKET_BYTES_MIN + limits::RELAY_HEADER_BYTES;
    match conn.max_datagram_size() {
        None => Err(LinkCheckError::NoDatagrams),
        Some(size) if size < needed => Err(LinkCheckError::TooSmall(size)),
        Some(_) => Ok(()),
    }
}
