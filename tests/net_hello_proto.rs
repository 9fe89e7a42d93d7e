//! The hello's pure decisions, without a network: parse, respond, conclude, close codes.

use kith::net::frame::{FrameDecoder, LENGTH_PREFIX_BYTES};
use kith::net::hello::{
    conclude, goodbye_frame, hello_frame, parse, respond, Admission, Capabilities, Capability,
    GoodbyeReason, Hello, HelloError, NodeRole, Received, Reply, PROTOCOL_VERSION,
};
use kith::net::CloseCode;

fn ours() -> Hello {
    Hello::new(
        NodeRole::Switchboard,
        Capabilities::of(&[Capability::Relay, Capability::Presence]),
    )
}

fn theirs() -> Hello {
    Hello::new(
        NodeRole::Daemon,
        Capabilities::of(&[Capability::Replicate, Capability::Presence]),
    )
}

/// The body of an encoded hello-stream frame.
fn body(frame: &[u8]) -> Vec<u8> {
    let mut input = frame;
    let body = FrameDecoder::new(kith::limits::HELLO_FRAME_BYTES_MAX)
        .decode_raw(&mut input)
        .expect("valid frame")
        .expect("complete frame");
    assert!(input.is_empty());
    body
}

#[test]
fn welcome_replies_with_our_hello_and_agrees_on_the_intersection() {
    let (reply, outcome) = respond(
        &ours(),
        &body(&hello_frame(&theirs()).expect("enc")),
        Admission::Welcome,
    );
    assert_eq!(reply, Some(Reply::Hello(ours())));
    let agreed = outcome.expect("agreed");
    assert_eq!(agreed.version, PROTOCOL_VERSION);
    assert_eq!(agreed.peer_role, NodeRole::Daemon);
    assert_eq!(agreed.common, Capabilities::of(&[Capability::Presence]));
    assert!(!agreed.common.contains(Capability::Relay));

    let back = conclude(&theirs(), &body(&hello_frame(&ours()).expect("enc"))).expect("agreed");
    assert_eq!(back.peer_role, NodeRole::Switchboard);
    assert_eq!(back.common, agreed.common);
}

#[test]
fn other_version_gets_a_version_goodbye_and_a_named_error() {
    let future = Hello {
        version: PROTOCOL_VERSION + 1,
        ..theirs()
    };
    let (reply, outcome) = respond(
        &ours(),
        &body(&hello_frame(&future).expect("enc")),
        Admission::Welcome,
    );
    assert_eq!(reply, Some(Reply::Goodbye(GoodbyeReason::VersionMismatch)));
    let err = outcome.expect_err("mismatch");
    assert!(
        matches!(err, HelloError::VersionMismatch { ours: 1, theirs: 2 }),
        "{err:?}"
    );
    assert_eq!(err.close_code(), Some(CloseCode::VersionMismatch));
}

#[test]
fn refusal_says_goodbye_and_the_dialer_hears_it() {
    let (reply, outcome) = respond(
        &ours(),
        &body(&hello_frame(&theirs()).expect("enc")),
        Admission::Refuse(GoodbyeReason::ShuttingDown),
    );
    assert_eq!(reply, Some(Reply::Goodbye(GoodbyeReason::ShuttingDown)));
    assert!(matches!(
        outcome,
        Err(HelloError::Refused(GoodbyeReason::ShuttingDown))
    ));
    let frame = reply.expect("reply").frame(PROTOCOL_VERSION).expect("enc");
    let err = conclude(&theirs(), &body(&frame)).expect_err("goodbye");
    assert!(matches!(
        err,
        HelloError::PeerSaidGoodbye(GoodbyeReason::ShuttingDown)
    ));
    assert_eq!(err.close_code(), Some(CloseCode::Goodbye));
}

#[test]
fn unknown_capability_bits_are_carried_but_never_agreed() {
    // version 1, Hello tag 0, capabilities = Presence | bit 20 (varint), role Daemon.
    let caps: u32 = (1 << 2) | (1 << 20);
    let mut raw = vec![PROTOCOL_VERSION as u8, 0];
    raw.extend(postcard::to_allocvec(&caps).expect("enc"));
    raw.push(0);
    let Ok(Received::Hello(hello)) = parse(PROTOCOL_VERSION, &raw) else {
        panic!("parses")
    };
    assert_ne!(
        hello.capabilities,
        Capabilities::of(&[Capability::Presence])
    );
    let (_, outcome) = respond(&ours(), &raw, Admission::Welcome);
    assert_eq!(
        outcome.expect("agreed").common,
        Capabilities::of(&[Capability::Presence])
    );
}

#[test]
fn garbage_and_unknown_kinds_get_no_reply_and_their_own_codes() {
    let cases: [(&[u8], CloseCode); 4] = [
        (&[1, 9], CloseCode::UnknownMessage), // version 1, message tag 9
        (
            &[1, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            CloseCode::FrameMalformed,
        ), // bad varint
        (&[1, 1, 0, 0], CloseCode::FrameMalformed), // goodbye with a trailing byte
        (&[], CloseCode::FrameMalformed),     // no version at all
    ];
    for (raw, code) in cases {
        let (reply, outcome) = respond(&ours(), raw, Admission::Welcome);
        assert_eq!(reply, None, "{raw:?}");
        assert_eq!(
            outcome.expect_err("refused").close_code(),
            Some(code),
            "{raw:?}"
        );
    }
}

#[test]
fn hello_frames_fit_their_bound() {
    for frame in [
        hello_frame(&ours()).expect("enc"),
        goodbye_frame(PROTOCOL_VERSION, GoodbyeReason::NotWelcome).expect("enc"),
    ] {
        assert!(frame.len() - LENGTH_PREFIX_BYTES <= kith::limits::HELLO_FRAME_BYTES_MAX as usize);
    }
}
