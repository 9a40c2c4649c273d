//! Awaiting a receiver on a tokio runtime: messages from another thread (and
//! from another process) wake the task through the readiness descriptor;
//! the stream ends after the sender is gone. Awaiting a sender: a full ring
//! wakes the task once the receiver frees room, or fails once it is gone.
#![cfg(feature = "tokio")]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::unique;
use mmapkit_shm::{AsyncReceiver, AsyncSender, ChannelOptions, Receiver, RecvError, SendError, Sender};

fn pair(tag: &str) -> (Sender, Receiver) {
    let name = unique(tag);
    // SAFETY: both ends follow the channel protocol.
    let rx = unsafe { Receiver::create_named(&name, &ChannelOptions::new()) }.unwrap();
    // SAFETY: as above.
    let tx = unsafe { Sender::open_named(&name, &ChannelOptions::new()) }.unwrap();
    (tx, rx)
}

#[tokio::test(flavor = "current_thread")]
async fn recv_await_wakes_for_messages_sent_later_from_another_thread() {
    let (mut tx, rx) = pair("async-recv");
    let mut rx = AsyncReceiver::new(rx).unwrap();
    let sender = std::thread::spawn(move || {
        for i in 0..1000u32 {
            // Now and then the receiving task has drained the ring and sleeps.
            if i % 100 == 0 {
                std::thread::sleep(Duration::from_millis(2));
            }
            tx.send_timeout(&i.to_le_bytes(), Some(Duration::from_secs(30))).unwrap();
        }
        tx
    });
    for i in 0..1000u32 {
        let got = rx.recv_with(|m| u32::from_le_bytes(m.try_into().unwrap())).await.unwrap();
        assert_eq!(got, i);
    }
    let tx = sender.join().unwrap();
    drop(tx);
    match rx.recv().await {
        Err(RecvError::PeerGone { .. }) => {}
        other => panic!("expected PeerGone once the sender is gone, got {other:?}"),
    }
}

#[tokio::test(flavor = "current_thread")]
async fn the_stream_yields_every_message_then_the_peer_gone_error_then_ends() {
    use tokio_stream::StreamExt;
    let (mut tx, rx) = pair("async-stream");
    let rx = AsyncReceiver::new(rx).unwrap();
    let sender = std::thread::spawn(move || {
        for i in 0..300u32 {
            tx.send_timeout(&i.to_le_bytes(), Some(Duration::from_secs(30))).unwrap();
        }
    });
    let items: Vec<_> = rx.collect().await;
    sender.join().unwrap();
    assert_eq!(items.len(), 301, "300 messages, one error, then the end");
    for (i, item) in items[..300].iter().enumerate() {
        assert_eq!(item.as_ref().unwrap(), &(i as u32).to_le_bytes());
    }
    assert!(matches!(items[300], Err(RecvError::PeerGone { .. })), "{:?}", items[300]);
}

#[tokio::test(flavor = "current_thread")]
async fn a_subscriber_awaits_messages_from_another_thread_and_its_stream_ends_when_publishers_go() {
    use mmapkit_shm::{AsyncSubscriber, PubSubOptions, Publisher, Subscriber, SubscriberError};
    use tokio_stream::StreamExt;
    let name = unique("async-board");
    let options = PubSubOptions::new();
    // SAFETY: every end follows the publish-subscribe protocol.
    let mut publisher = unsafe { Publisher::create_named(&name, &options) }.unwrap();
    // SAFETY: as above.
    let subscriber = unsafe { Subscriber::open_named(&name, &options) }.unwrap();
    let mut subscriber = AsyncSubscriber::new(subscriber).unwrap();
    let writer = std::thread::spawn(move || {
        for i in 0..500u64 {
            if i % 100 == 0 {
                std::thread::sleep(Duration::from_millis(2));
            }
            publisher.publish_timeout(&i.to_le_bytes(), Some(Duration::from_secs(30))).unwrap();
        }
    });
    for i in 0..250u64 {
        let (seq, bytes) = subscriber.recv().await.unwrap();
        assert_eq!((seq, bytes), (i, i.to_le_bytes().to_vec()));
    }
    let rest: Vec<_> = subscriber.collect().await;
    writer.join().unwrap();
    assert_eq!(rest.len(), 251, "250 more messages, then the last error, then the end");
    for (k, item) in rest[..250].iter().enumerate() {
        let i = 250 + k as u64;
        assert_eq!(item.as_ref().unwrap(), &(i, i.to_le_bytes().to_vec()));
    }
    assert!(matches!(rest[250], Err(SubscriberError::PublishersGone { .. })), "{:?}", rest[250]);
}

/// A pair on a small ring, one-to-one or many-to-many, the sender's ring
/// filled until `try_send` says `Full`; how many messages it holds.
fn full_pair(tag: &str, many: bool, len: usize) -> (Sender, Receiver, u32) {
    let name = unique(tag);
    let mut options = ChannelOptions::new();
    options.capacity(4096).many(many);
    // SAFETY: both ends follow the channel protocol.
    let rx = unsafe { Receiver::create_named(&name, &options) }.unwrap();
    // SAFETY: as above.
    let mut tx = unsafe { Sender::open_named(&name, &options) }.unwrap();
    let mut held = 0u32;
    loop {
        let mut message = vec![0u8; len];
        message[..4].copy_from_slice(&held.to_le_bytes());
        match tx.try_send(&message) {
            Ok(()) => held += 1,
            Err(SendError::Full) => break,
            Err(other) => panic!("filling the ring: {other}"),
        }
    }
    assert!(held > 1, "a 4 KiB ring holds more than one {len}-byte message");
    (tx, rx, held)
}

/// Receives `count` messages numbered from `first` on, checking each.
fn drain_in_order(rx: &mut Receiver, first: u32, count: u32) {
    for i in first..first + count {
        let message = rx.recv_timeout(Some(Duration::from_secs(30))).unwrap();
        assert_eq!(u32::from_le_bytes(message[..4].try_into().unwrap()), i);
    }
}

/// An awaited send on a full ring completes only once the receiver, in
/// another thread, frees room, and then every message arrives in order.
async fn an_awaited_send_waits_for_room(many: bool) {
    let (tx, mut rx, held) = full_pair(if many { "async-room-many" } else { "async-room" }, many, 200);
    let mut tx = AsyncSender::new(tx).unwrap();
    let started = Arc::new(AtomicBool::new(false));
    let receiving = started.clone();
    let receiver = std::thread::spawn(move || {
        // The task is asleep on the full ring by now.
        std::thread::sleep(Duration::from_millis(100));
        receiving.store(true, Ordering::SeqCst);
        drain_in_order(&mut rx, 0, held + 500);
        rx
    });
    // In a task of its own, so that only a wake-up of its descriptor polls it again (a timer's would too).
    let sending = tokio::spawn(async move {
        for i in held..held + 500 {
            let mut message = vec![0u8; 200];
            message[..4].copy_from_slice(&i.to_le_bytes());
            tx.send(&message).await.unwrap();
            if i == held {
                assert!(started.load(Ordering::SeqCst), "the send into a full ring completed before room was freed");
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(60), sending).await.expect("no wake-up came").unwrap();
    receiver.join().unwrap();
}

#[tokio::test(flavor = "current_thread")]
async fn an_awaited_send_into_a_full_ring_completes_once_the_receiver_frees_room() {
    an_awaited_send_waits_for_room(false).await;
}

#[tokio::test(flavor = "current_thread")]
async fn an_awaited_send_into_a_full_many_to_many_ring_completes_once_the_receiver_frees_room() {
    an_awaited_send_waits_for_room(true).await;
}

#[tokio::test(flavor = "current_thread")]
async fn an_awaited_reserve_on_a_full_ring_fails_once_the_receiver_is_gone() {
    let (tx, rx, _) = full_pair("async-room-gone", false, 200);
    let mut tx = AsyncSender::new(tx).unwrap();
    let closer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        drop(rx);
    });
    // In a task of its own, so that only a wake-up of its descriptor polls it again (a timer's would too).
    let waiting = tokio::spawn(async move {
        let result = tx.reserve(200).await.map(|r| r.len());
        (result, tx)
    });
    let (result, mut tx) =
        tokio::time::timeout(Duration::from_secs(60), waiting).await.expect("no wake-up came").unwrap();
    assert!(matches!(result, Err(SendError::PeerGone { .. })), "{result:?}");
    closer.join().unwrap();
    // A message that can never fit is refused at once, not awaited.
    let max = tx.get_ref().max_message();
    let too_large = tx.reserve(max + 1).await;
    assert!(matches!(too_large, Err(SendError::MessageTooLarge { .. })), "{too_large:?}");
}

#[tokio::test(flavor = "current_thread")]
async fn senders_and_receivers_on_one_runtime_pass_many_messages_through_a_small_ring() {
    let (tx, rx) = pair("async-both");
    let (mut tx, mut rx) = (AsyncSender::new(tx).unwrap(), AsyncReceiver::new(rx).unwrap());
    // Far more than the ring holds: both tasks sleep in turn on one thread.
    let sending = async move {
        for i in 0..20_000u32 {
            tx.send(&[i.to_le_bytes().as_slice(), &[0u8; 60]].concat()).await.unwrap();
        }
        tx.into_inner()
    };
    let receiving = async move {
        for i in 0..20_000u32 {
            let got = rx.recv_with(|m| u32::from_le_bytes(m[..4].try_into().unwrap())).await.unwrap();
            assert_eq!(got, i);
        }
        rx
    };
    let both = async { tokio::join!(sending, receiving) };
    tokio::time::timeout(Duration::from_secs(60), both).await.expect("the two tasks stalled");
}
