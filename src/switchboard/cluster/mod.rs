//! A switchboard's links to the other nodes of its cluster, and who may be one ([`members`]): the dialling side of a `--join`
//! ([`link`]), the control stream between two nodes ([`node_link`]: cross-node introductions and
//! relayed frames batched per node), the per-node queues ([`nodes`]) and the presence tracker's
//! QUIC transport ([`presence_link`]).

pub mod link;
pub mod members;
pub mod node_link;
pub mod nodes;
pub mod presence_link;
