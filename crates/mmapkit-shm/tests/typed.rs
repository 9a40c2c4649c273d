//! Typed ends: values loaned and received in place, the message type checked
//! when an end attaches (naming both types when they differ), and a peer
//! scribbling on the type tag.

mod common;

use common::unique;

use std::os::unix::fs::FileExt;
use std::time::Duration;

use mmapkit_shm::{ChannelOptions, PubSubOptions, RecvError, ShmError, SubscriberError, typed};
use proptest::prelude::*;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

#[derive(IntoBytes, FromBytes, KnownLayout, Immutable, Debug, PartialEq, Clone, Copy)]
#[repr(C)]
struct Tick {
    seq: u64,
    price: f64,
    volume: u32,
    venue: [u8; 4],
}

#[derive(IntoBytes, FromBytes, KnownLayout, Immutable, Debug, PartialEq, Clone, Copy)]
#[repr(C)]
struct Other {
    a: u64,
    b: u64,
    c: u64,
}

#[derive(IntoBytes, FromBytes, KnownLayout, Immutable, Debug, PartialEq, Clone, Copy)]
#[repr(C, align(16))]
struct Wide {
    x: [u8; 16],
}

fn tick(seq: u64) -> Tick {
    Tick { seq, price: seq as f64 * 0.25, volume: (seq * 7) as u32, venue: *b"XNAS" }
}

#[test]
fn typed_values_are_loaned_filled_in_place_and_received_as_references() {
    let name = unique("typed-pubsub");
    let mut options = PubSubOptions::new();
    options.capacity(8).subscribers(2);
    // SAFETY: every end of these regions is this crate's, following its protocol.
    let mut publisher = unsafe { typed::Publisher::<Tick>::create_named(&name, &options) }.unwrap();
    // SAFETY: as above.
    let mut a = unsafe { typed::Subscriber::<Tick>::open_named(&name, &options) }.unwrap();
    // SAFETY: as above.
    let mut b = unsafe { typed::Subscriber::<Tick>::open_named(&name, &options) }.unwrap();
    for seq in 0..100 {
        if seq % 2 == 0 {
            let mut loan = publisher.loan().unwrap();
            *loan = tick(seq);
            loan.volume += 1;
            loan.commit();
        } else {
            let mut t = tick(seq);
            t.volume += 1;
            publisher.publish(&t).unwrap();
        }
        let mut expected = tick(seq);
        expected.volume += 1;
        for sub in [&mut a, &mut b] {
            let got = sub.try_recv().unwrap();
            assert_eq!((got.seq(), *got), (seq, expected));
        }
    }
    // The slots are sized for the type, not for the options' max_message.
    assert_eq!(publisher.as_bytes().max_message(), 64);
}

#[test]
fn an_end_of_another_type_is_refused_with_both_types_named() {
    let name = unique("typed-mismatch");
    let options = PubSubOptions::new();
    // SAFETY: as above.
    let _publisher = unsafe { typed::Publisher::<Tick>::create_named(&name, &options) }.unwrap();
    // SAFETY: as above.
    let err = unsafe { typed::Subscriber::<Other>::open_named(&name, &options) }.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, ShmError::WrongMessageType { .. }), "{text}");
    assert!(text.contains(std::any::type_name::<Tick>()), "{text}");
    assert!(text.contains(std::any::type_name::<Other>()), "{text}");
    assert!(text.contains(&name), "{text}");
    // A byte end sees the bytes.
    // SAFETY: as above.
    let _bytes = unsafe { mmapkit_shm::Subscriber::open_named(&name, &options) }.unwrap();

    // A typed end on a byte board is refused too.
    let plain = unique("typed-on-bytes");
    // SAFETY: as above.
    let _raw = unsafe { mmapkit_shm::Publisher::create_named(&plain, &options) }.unwrap();
    // SAFETY: as above.
    let err = unsafe { typed::Subscriber::<Tick>::open_named(&plain, &options) }.unwrap_err();
    assert!(err.to_string().contains("raw bytes"), "{err}");
}

#[test]
fn typed_channel_ends_reserve_in_place_and_check_the_type() {
    let name = unique("typed-channel");
    let mut options = ChannelOptions::new();
    options.capacity(4096);
    // SAFETY: as above.
    let mut rx = unsafe { typed::Receiver::<Tick>::create_named(&name, &options) }.unwrap();
    // SAFETY: as above.
    let mut tx = unsafe { typed::Sender::<Tick>::open_named(&name, &options) }.unwrap();
    for seq in 0..1000 {
        let mut slot = tx.reserve().unwrap();
        *slot = tick(seq);
        slot.commit();
        assert_eq!(*rx.recv_timeout(Some(Duration::from_secs(5))).unwrap(), tick(seq));
    }
    tx.send(&tick(7)).unwrap();
    assert_eq!(*rx.recv().unwrap(), tick(7));
    assert!(matches!(rx.try_recv(), Err(RecvError::Empty)));
    let mut filled = 0u64;
    while tx.try_send(&tick(filled)).is_ok() {
        filled += 1;
    }
    assert!(matches!(tx.try_reserve(), Err(mmapkit_shm::SendError::Full)));
    for seq in 0..filled {
        assert_eq!(*rx.try_recv().unwrap(), tick(seq));
    }
    let mut slot = tx.try_reserve().unwrap();
    slot.seq = 99;
    slot.commit();
    assert_eq!(rx.try_recv().unwrap().seq, 99);
    drop(tx);
    // SAFETY: as above.
    let err = unsafe { typed::Sender::<Other>::open_named(&name, &options) }.unwrap_err();
    assert!(err.to_string().contains(std::any::type_name::<Other>()), "{err}");
    assert!(err.to_string().contains(std::any::type_name::<Tick>()), "{err}");
    // A byte sender of the wrong length is reported, and the message released.
    // SAFETY: as above.
    let mut raw = unsafe { mmapkit_shm::Sender::open_named(&name, &options) }.unwrap();
    raw.send(b"short").unwrap();
    raw.send(tick(9).as_bytes()).unwrap();
    let err = rx.recv_timeout(Some(Duration::from_secs(5))).unwrap_err();
    assert!(matches!(&err, RecvError::Corrupt { what, .. } if what.contains("5 bytes")), "{err}");
    assert_eq!(*rx.recv_timeout(Some(Duration::from_secs(5))).unwrap(), tick(9));
}

#[test]
fn types_a_channel_or_slot_cannot_hold_are_refused() {
    let name = unique("typed-wide");
    // SAFETY: as above.
    let err = unsafe { typed::Receiver::<Wide>::create_named(&name, &ChannelOptions::new()) }.unwrap_err();
    assert!(matches!(err, ShmError::TypeDoesNotFit { align: 16, room_align: 8, .. }), "{err}");
    // A board's slots are 64-aligned: 16 is fine there.
    let board = unique("typed-wide-board");
    // SAFETY: as above.
    let mut publisher = unsafe { typed::Publisher::<Wide>::create_named(&board, &PubSubOptions::new()) }.unwrap();
    // SAFETY: as above.
    let mut sub = unsafe { typed::Subscriber::<Wide>::open_named(&board, &PubSubOptions::new()) }.unwrap();
    publisher.try_publish(&Wide { x: [3; 16] }).unwrap();
    let got = sub.try_recv().unwrap();
    assert_eq!(got.x, [3; 16]);
    assert_eq!((&*got as *const Wide as usize) % 16, 0);
    drop(got);
    let err = sub.try_recv().unwrap_err();
    assert!(matches!(err, SubscriberError::Empty), "{err}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn a_peer_scribbling_on_the_type_tag_gets_a_refusal_never_a_crash(
        // The board header's tag: after the geometry and tail lines, the events and flags.
        at in 256u64..(256 + 32 + 224),
        bytes in proptest::collection::vec(any::<u8>(), 1..16),
    ) {
        let name = unique("typed-hostile");
        // SAFETY: as above.
        let _publisher = unsafe { typed::Publisher::<Tick>::create_named(&name, &PubSubOptions::new()) }.unwrap();
        let file = std::fs::OpenOptions::new().write(true).open(format!("/dev/shm/{name}")).unwrap();
        file.write_all_at(&bytes, 128 + at).unwrap();
        // SAFETY: as above.
        match unsafe { typed::Subscriber::<Tick>::open_named(&name, &PubSubOptions::new()) } {
            Ok(mut sub) => prop_assert!(matches!(sub.try_recv(), Err(SubscriberError::Empty))),
            Err(ShmError::WrongMessageType { ours, .. }) => prop_assert!(ours.contains("Tick")),
            Err(other) => prop_assert!(false, "unexpected error {other}"),
        }
    }
}
