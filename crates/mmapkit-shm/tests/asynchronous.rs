//! Awaiting a receiver on a tokio runtime: messages from another thread (and
//! from another process) wake the task through the readiness descriptor;
//! the stream ends after the sender is gone.
#![cfg(feature = "tokio")]

mod common;

use std::time::Duration;

use common::unique;
use mmapkit_shm::{AsyncReceiver, ChannelOptions, Receiver, RecvError, Sender};

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
