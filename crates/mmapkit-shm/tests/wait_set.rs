//! `wait_any`: one wait over a receiver and a subscriber wakes for whichever
//! has a message, loses no wake-up over many rounds, and wakes when a peer
//! goes.

mod common;

use std::time::Duration;

use common::unique;
use mmapkit_shm::{
    ChannelOptions, PubSubOptions, Publisher, Receiver, RecvError, Sender, Subscriber, Waitable, wait_any,
};

fn ends() -> (Sender, Receiver, Publisher, Subscriber) {
    let (chan, board) = (unique("waitset-chan"), unique("waitset-board"));
    // SAFETY: every end follows its protocol.
    let rx = unsafe { Receiver::create_named(&chan, &ChannelOptions::new()) }.unwrap();
    // SAFETY: as above.
    let tx = unsafe { Sender::open_named(&chan, &ChannelOptions::new()) }.unwrap();
    // SAFETY: as above.
    let publisher = unsafe { Publisher::create_named(&board, &PubSubOptions::new()) }.unwrap();
    // SAFETY: as above.
    let subscriber = unsafe { Subscriber::open_named(&board, &PubSubOptions::new()) }.unwrap();
    (tx, rx, publisher, subscriber)
}

fn drain(rx: &mut Receiver, sub: &mut Subscriber) -> (usize, usize) {
    let (mut a, mut b) = (0, 0);
    while rx.try_recv().is_ok() {
        a += 1;
    }
    while sub.try_recv().is_ok() {
        b += 1;
    }
    (a, b)
}

#[test]
fn wait_any_names_the_ends_with_messages() {
    let (mut tx, mut rx, mut publisher, mut sub) = ends();
    let look = Some(Duration::ZERO);
    assert!(wait_any(&mut [&mut rx as &mut dyn Waitable, &mut sub], look).unwrap().is_empty());
    tx.send(b"one").unwrap();
    assert_eq!(wait_any(&mut [&mut rx as &mut dyn Waitable, &mut sub], None).unwrap(), [0]);
    assert_eq!(drain(&mut rx, &mut sub), (1, 0));
    publisher.publish(b"two").unwrap();
    assert_eq!(wait_any(&mut [&mut rx as &mut dyn Waitable, &mut sub], None).unwrap(), [1]);
    assert_eq!(drain(&mut rx, &mut sub), (0, 1));
    tx.send(b"three").unwrap();
    publisher.publish(b"four").unwrap();
    // Both signals may take a moment each: wait until both have been seen.
    let mut seen = Vec::new();
    while seen.len() < 2 {
        for i in wait_any(&mut [&mut rx as &mut dyn Waitable, &mut sub], None).unwrap() {
            if !seen.contains(&i) {
                seen.push(i);
            }
        }
    }
    assert_eq!(drain(&mut rx, &mut sub), (1, 1));
    drop(tx);
    assert_eq!(wait_any(&mut [&mut rx as &mut dyn Waitable, &mut sub], None).unwrap(), [0], "the sender went");
    assert!(matches!(rx.try_recv(), Err(RecvError::PeerGone { .. })));
}

#[test]
fn no_wake_up_is_lost_over_many_rounds() {
    const EACH: usize = 3000;
    let (mut tx, mut rx, mut publisher, mut sub) = ends();
    let writer = std::thread::spawn(move || {
        for i in 0..EACH {
            tx.send_timeout(&i.to_le_bytes(), Some(Duration::from_secs(30))).unwrap();
            publisher.publish_timeout(&i.to_le_bytes(), Some(Duration::from_secs(30))).unwrap();
            if i % 64 == 0 {
                // Let the waiter drain everything and go to sleep.
                std::thread::sleep(Duration::from_micros(200));
            }
        }
        (tx, publisher)
    });
    let (mut got_a, mut got_b) = (0, 0);
    while got_a < EACH || got_b < EACH {
        // As long as it takes: a lost wake-up hangs here (the test harness's time-out catches it).
        wait_any(&mut [&mut rx as &mut dyn Waitable, &mut sub], None).unwrap();
        let (a, b) = drain(&mut rx, &mut sub);
        got_a += a;
        got_b += b;
    }
    assert_eq!((got_a, got_b), (EACH, EACH));
    drop(writer.join().unwrap());
}
