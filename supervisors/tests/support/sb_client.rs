//! A client speaking the switchboard protocol by hand (key-bound QUIC, hello, join, introduce,
//! raw relayed datagrams): what a daemon is to a switchboard, without a daemon, so a test can
//! see every frame and misbehave on purpose.

use std::time::Duration;

use bytes::Bytes;
use ed25519_dalek::SigningKey;
use kith::identity::FeedId;
use kith::net::hello::{dial_hello, Capabilities, Capability, Hello, HelloError, NodeRole};
use kith::net::tls::server_name;
use kith::net::{stream, PeerEndpoint};
use kith::relay::config::outer_client_config;
use kith::wire::switchboard::{ClientMsg, ServerMsg};

/// A client speaking the switchboard protocol by hand.
pub(crate) struct Client {
    pub id: FeedId,
    pub conn: quinn::Connection,
    pub send: quinn::SendStream,
    pub recv: quinn::RecvStream,
    pub endpoint: PeerEndpoint,
}

impl Client {
    /// Dial the switchboard `node` at `port` as key `[seed; 32]` and say hello in `role`.
    pub(crate) async fn hello(
        seed: u8,
        port: u16,
        node: &FeedId,
        role: NodeRole,
    ) -> Result<Client, HelloError> {
        let key = SigningKey::from_bytes(&[seed; 32]);
        let endpoint = PeerEndpoint::bind("127.0.0.1:0".parse().unwrap(), &key).unwrap();
        let expected = node.verifying_key().unwrap();
        let config = outer_client_config(&key, expected).unwrap();
        let addr = format!("127.0.0.1:{port}").parse().unwrap();
        let conn = endpoint
            .quinn()
            .connect_with(config, addr, &server_name(&expected))
            .unwrap()
            .await
            .unwrap();
        let hello = Hello::new(role, Capabilities::of(&[Capability::Presence]));
        let greeted = dial_hello(&conn, &hello).await?;
        Ok(Client {
            id: FeedId::from(key.verifying_key()),
            conn,
            send: greeted.send,
            recv: greeted.recv,
            endpoint,
        })
    }

    /// A client (the daemon role) joined to the open switchboard `node` at `port`.
    pub(crate) async fn join(seed: u8, port: u16, node: &FeedId) -> Client {
        let mut client = Client::hello(seed, port, node, NodeRole::Daemon)
            .await
            .unwrap();
        client.write(ClientMsg::Join { invite: None }).await;
        assert!(matches!(client.read().await, ServerMsg::Welcome { .. }));
        client
    }

    pub(crate) async fn write(&mut self, msg: ClientMsg) {
        stream::write_frame(&mut self.send, &msg).await.unwrap();
    }

    /// Every message that comes before two quiet seconds.
    pub(crate) async fn drain(&mut self) -> Vec<ServerMsg> {
        let mut got = Vec::new();
        while let Ok(frame) = tokio::time::timeout(
            Duration::from_secs(2),
            stream::read_frame::<ServerMsg>(&mut self.recv, 1 << 20),
        )
        .await
        {
            got.push(frame.unwrap().expect("a frame"));
        }
        got
    }

    pub(crate) async fn read(&mut self) -> ServerMsg {
        let read = stream::read_frame::<ServerMsg>(&mut self.recv, 1 << 20);
        tokio::time::timeout(Duration::from_secs(10), read)
            .await
            .expect("an answer in time")
            .unwrap()
            .expect("a frame")
    }

    /// Sends `payload` to `to` through the relay and waits for the next datagram.
    pub(crate) async fn relay(&self, to: &Client, payload: &[u8]) -> Bytes {
        let frame = Bytes::from([&to.id.0[..], payload].concat());
        self.conn.send_datagram(frame).unwrap();
        tokio::time::timeout(Duration::from_secs(5), to.conn.read_datagram())
            .await
            .expect("relayed in time")
            .unwrap()
    }
}
