//! The SPSC channel: order, wrap-around, limits, a million messages between
//! two processes, ends killed mid-flight, and a peer scribbling on the ring.

mod common;

use common::{
    DATA_READY_AT, Started, TAIL_AT, child_command, lose_last_tail_store, name_from_env, spawn_until, unique,
};

use std::os::unix::fs::FileExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use mmapkit_shm::{
    ChannelOptions, EarlyWake, Receiver, RecvError, RegionOptions, Role, SendError, Sender, ShmError, Wait,
};
use proptest::prelude::*;

/// Message `seq`: a length from 0 to 1000 and bytes that depend on both.
fn message(seq: u64) -> Vec<u8> {
    let mut state = seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let len = (state % 1001) as usize;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

fn small(capacity: usize) -> ChannelOptions {
    let mut options = ChannelOptions::new();
    options.capacity(capacity);
    options
}

#[test]
fn messages_arrive_in_order_across_many_wraps() {
    let name = unique("order");
    // SAFETY: every end of these channels is this crate's, following its protocol.
    let mut tx = unsafe { Sender::create_named(&name, &small(4096)) }.unwrap();
    // SAFETY: every end of these channels is this crate's, following its protocol.
    let mut rx = unsafe { Receiver::open_named(&name, &small(4096)) }.unwrap();
    assert_eq!(tx.max_message(), 2040);
    for seq in 0..5_000u64 {
        let expected = message(seq);
        tx.send(&expected).unwrap();
        let got = rx.try_recv().unwrap();
        assert_eq!(&*got, &expected[..], "message {seq}");
    }
    assert!(matches!(rx.try_recv(), Err(RecvError::Empty)));
}

#[test]
fn zero_copy_reservations_commit_or_vanish() {
    let name = unique("reserve");
    // SAFETY: every end of these channels is this crate's, following its protocol.
    let mut tx = unsafe { Sender::create_named(&name, &small(4096)) }.unwrap();
    // SAFETY: every end of these channels is this crate's, following its protocol.
    let mut rx = unsafe { Receiver::open_named(&name, &small(4096)) }.unwrap();
    {
        let mut slot = tx.reserve(5).unwrap();
        slot.copy_from_slice(b"first");
    } // not committed: never delivered
    let mut slot = tx.reserve(6).unwrap();
    slot.copy_from_slice(b"second");
    slot.commit();
    assert_eq!(&*rx.recv().unwrap(), b"second");
    assert!(matches!(rx.try_recv(), Err(RecvError::Empty)));
}

/// Every way of waiting gives up after the timeout (never before it), with
/// an error that carries the timeout, whether it waits to receive or for room.
#[test]
fn timeouts_hold_for_every_way_of_waiting() {
    let timeout = Duration::from_millis(30);
    for wait in [Wait::Spin, Wait::Block, Wait::SpinThenBlock(100)] {
        let name = unique("timeouts");
        let mut options = small(4096);
        options.wait(wait);
        // SAFETY: every end of these channels is this crate's, following its protocol.
        let mut tx = unsafe { Sender::create_named(&name, &options) }.unwrap();
        // SAFETY: as above.
        let mut rx = unsafe { Receiver::open_named(&name, &options) }.unwrap();
        let start = Instant::now();
        let err = rx.recv_timeout(Some(timeout)).map(|m| m.len()).unwrap_err();
        let waited = start.elapsed();
        assert!(matches!(err, RecvError::Timeout(t) if t == timeout), "{wait:?}: {err}");
        assert!(waited >= timeout && waited < Duration::from_secs(5), "{wait:?}: gave up after {waited:?}");
        while tx.try_send(&[1u8; 1000]).is_ok() {}
        let start = Instant::now();
        let err = tx.send_timeout(&[1u8; 1000], Some(timeout)).unwrap_err();
        let waited = start.elapsed();
        assert!(matches!(err, SendError::Timeout(t) if t == timeout), "{wait:?}: {err}");
        assert!(waited >= timeout && waited < Duration::from_secs(5), "{wait:?}: gave up after {waited:?}");
        // A timeout too long for the clock is no deadline, not a panic: the
        // wait ends when the peer is found gone.
        drop(rx);
        let err = tx.send_timeout(&[1u8; 1000], Some(Duration::MAX)).unwrap_err();
        assert!(matches!(err, SendError::PeerGone { .. }), "{wait:?}: {err}");
    }
}

#[test]
fn limits_full_empty_and_short_buffers_are_errors() {
    let name = unique("limits");
    // SAFETY: every end of these channels is this crate's, following its protocol.
    let mut tx = unsafe { Sender::create_named(&name, &small(4096)) }.unwrap();
    // SAFETY: every end of these channels is this crate's, following its protocol.
    let mut rx = unsafe { Receiver::open_named(&name, &small(4096)) }.unwrap();
    let err = tx.send(&vec![0u8; 2041]).unwrap_err();
    assert!(matches!(err, SendError::MessageTooLarge { len: 2041, max: 2040 }), "{err}");
    assert!(matches!(rx.try_recv(), Err(RecvError::Empty)));
    let mut sent = 0;
    while tx.try_send(&[7u8; 1000]).is_ok() {
        sent += 1;
    }
    assert_eq!(sent, 4, "four 1008-byte records fit in 4096 bytes");
    assert!(matches!(tx.try_send(&[7u8; 1000]), Err(SendError::Full)));
    let err = tx.send_timeout(&[7u8; 1000], Some(Duration::from_millis(50))).unwrap_err();
    assert!(matches!(err, SendError::Timeout(_)), "{err}");

    let mut buf = [0u8; 10];
    let err = rx.recv_into(&mut buf, None).unwrap_err();
    assert!(matches!(err, RecvError::BufferTooSmall { need: 1000, have: 10 }), "{err}");
    let mut buf = vec![0u8; 2000];
    assert_eq!(rx.recv_into(&mut buf, None).unwrap(), 1000, "the message stayed queued");

    // SAFETY: every end of these channels is this crate's, following its protocol.
    let err = unsafe { Sender::open_named(&name, &small(4096)) }.unwrap_err();
    assert!(matches!(err, ShmError::EndTaken { role: Role::Sender, .. }), "{err}");
}

#[test]
fn a_closed_sender_is_reported_after_its_messages() {
    let name = unique("closed");
    // SAFETY: every end of these channels is this crate's, following its protocol.
    let mut tx = unsafe { Sender::create_named(&name, &small(4096)) }.unwrap();
    // SAFETY: every end of these channels is this crate's, following its protocol.
    let mut rx = unsafe { Receiver::open_named(&name, &small(4096)) }.unwrap();
    tx.send(b"last words").unwrap();
    drop(tx);
    assert_eq!(&*rx.recv().unwrap(), b"last words");
    let err = rx.recv_timeout(Some(Duration::from_secs(5))).unwrap_err();
    assert!(matches!(err, RecvError::PeerGone { peer: Role::Sender, .. }), "{err}");
}

const MILLION: u64 = 1_000_000;

#[test]
fn a_message_committed_before_a_lost_tail_store_is_delivered_and_never_overwritten() {
    // The receiver waits on the tail, but the header is the commit: a
    // message whose tail store never happened still reaches it.
    let name = unique("lost-tail");
    // SAFETY: every end of these channels is this crate's, following its protocol.
    let mut rx = unsafe { Receiver::create_named(&name, &small(4096)) }.unwrap();
    // SAFETY: every end of these channels is this crate's, following its protocol.
    let mut tx = unsafe { Sender::open_named(&name, &small(4096)) }.unwrap();
    tx.send(b"first").unwrap();
    tx.send(b"second").unwrap();
    lose_last_tail_store(&name, b"second".len());
    drop(tx);
    assert_eq!(&*rx.recv_timeout(Some(Duration::from_secs(5))).unwrap(), b"first");
    assert_eq!(&*rx.recv_timeout(Some(Duration::from_secs(5))).unwrap(), b"second", "found by the last look");
    assert!(matches!(rx.recv_timeout(Some(Duration::from_secs(5))), Err(RecvError::PeerGone { .. })));

    // try_recv's last look finds it too.
    let name = unique("lost-tail-try");
    // SAFETY: every end of these channels is this crate's, following its protocol.
    let mut rx = unsafe { Receiver::create_named(&name, &small(4096)) }.unwrap();
    // SAFETY: every end of these channels is this crate's, following its protocol.
    let mut tx = unsafe { Sender::open_named(&name, &small(4096)) }.unwrap();
    tx.send(b"only").unwrap();
    lose_last_tail_store(&name, b"only".len());
    drop(tx);
    assert_eq!(&*rx.try_recv().unwrap(), b"only");
    assert!(matches!(rx.try_recv(), Err(RecvError::PeerGone { .. })));

    // A sender that attaches after such a death writes after the message, not
    // over it, whether the receiver took the message before or not.
    for taken_first in [false, true] {
        let name = unique("lost-tail-next");
        // SAFETY: every end of these channels is this crate's, following its protocol.
        let mut rx = unsafe { Receiver::create_named(&name, &small(4096)) }.unwrap();
        // SAFETY: every end of these channels is this crate's, following its protocol.
        let mut tx = unsafe { Sender::open_named(&name, &small(4096)) }.unwrap();
        tx.send(b"orphan").unwrap();
        lose_last_tail_store(&name, b"orphan".len());
        drop(tx);
        if taken_first {
            assert_eq!(&*rx.recv_timeout(Some(Duration::from_secs(5))).unwrap(), b"orphan");
        }
        // SAFETY: every end of these channels is this crate's, following its protocol.
        let mut next = unsafe { Sender::open_named(&name, &small(4096)) }.unwrap();
        if !taken_first {
            // The new sender published the orphan when it attached: it
            // arrives while that sender sits idle (alive, so no last look).
            assert_eq!(&*rx.recv_timeout(Some(Duration::from_secs(5))).unwrap(), b"orphan");
        }
        for message in [&b"next"[..], b"and the one after"] {
            next.send(message).unwrap();
        }
        assert_eq!(&*rx.recv_timeout(Some(Duration::from_secs(5))).unwrap(), b"next", "taken first: {taken_first}");
        assert_eq!(&*rx.try_recv().unwrap(), b"and the one after", "taken first: {taken_first}");
    }
}

/// CPU time this thread has used, in clock ticks (user and system).
fn thread_cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
    // The fields after the command name, which is in parentheses.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// A blocking receiver (liveness checked every `peer_check`) and the message
/// "stranded", committed by a sender that then closed without publishing
/// its tail.
fn stranded_for_a_blocking_receiver(tag: &str, peer_check: Duration) -> (String, Receiver) {
    let name = unique(tag);
    let mut options = small(4096);
    options.wait(Wait::Block).peer_check(peer_check);
    // SAFETY: every end of these channels is this crate's, following its protocol.
    let rx = unsafe { Receiver::create_named(&name, &options) }.unwrap();
    // SAFETY: every end of these channels is this crate's, following its protocol.
    let mut tx = unsafe { Sender::open_named(&name, &small(4096)) }.unwrap();
    tx.send(b"stranded").unwrap();
    lose_last_tail_store(&name, b"stranded".len());
    (name, rx)
}

#[test]
fn a_blocking_receiver_sleeps_while_a_dead_senders_message_waits_for_the_last_look() {
    // The header is committed but the tail never moved: the receiver's
    // quick look finds nothing, so its futex wait must find nothing either
    // and sleep until the liveness check, not spin on the header.
    let (_name, mut rx) = stranded_for_a_blocking_receiver("sleeps", Duration::from_secs(1));
    let before = thread_cpu_ticks();
    assert_eq!(&*rx.recv_timeout(Some(Duration::from_secs(5))).unwrap(), b"stranded");
    let used = thread_cpu_ticks() - before;
    // Spinning through the one-second wait would use about 100 ticks.
    assert!(used < 50, "the wait used {used} clock ticks of CPU");
}

/// Makes a kept channel region with the head at `at` and the tail at
/// `tail` (one-to-one, or many-to-many with `options`), and optionally a
/// committed 100-byte message at the head.
fn positions_at(at: u64, tail: u64, stranded: bool, options: &ChannelOptions) -> String {
    let name = unique("top");
    let mut kept = options.clone();
    kept.region(RegionOptions::new().keep(true).clone());
    // SAFETY: every end of these channels is this crate's, following its protocol.
    drop(unsafe { Receiver::create_named(&name, &kept) }.unwrap());
    let file = std::fs::OpenOptions::new().write(true).open(format!("/dev/shm/{name}")).unwrap();
    file.write_all_at(&tail.to_le_bytes(), TAIL_AT).unwrap();
    file.write_all_at(&at.to_le_bytes(), TAIL_AT + 128).unwrap();
    if stranded {
        // The data starts after the region header and the 1024-byte ring header.
        let offset = 128 + 1024 + (at % 4096);
        file.write_all_at(&[7u8; 100], offset + 8).unwrap();
        file.write_all_at(&(0x4d53_4721u64 << 32 | 100).to_le_bytes(), offset).unwrap();
    }
    name
}

/// Removes a kept region when dropped, whatever the test did.
struct RemoveOnDrop(String);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(format!("/dev/shm/{}", self.0));
    }
}

/// Takes what is there: errors, or messages (garbled, perhaps, but inside
/// the limit), never a panic.
fn take_any(rx: &mut Receiver) {
    match rx.try_recv() {
        Ok(message) => assert!(message.len() <= 2040),
        Err(RecvError::Empty) | Err(RecvError::Corrupt { .. }) | Err(RecvError::PeerGone { .. }) => {}
        Err(other) => panic!("unexpected error {other}"),
    }
}

#[test]
fn positions_near_the_top_of_u64_give_errors_never_an_overflow() {
    // Positions a peer put just below 2^64: 304 below, and 112 below (a
    // 100-byte message then ends exactly at 2^64); with a message committed
    // there but not published (a sender attaching walks past it), or
    // published by a tail further on (the receiver's quick look takes it);
    // with the sender alive, replaced, and gone (the receiver's last look);
    // one-to-one and many-to-many.
    let top = |below: u64| u64::MAX - below + 1;
    let cases = [
        (top(304), top(304), false),
        (top(112), top(112), false),
        (top(112), top(112), true),
        (top(304), top(304), true),
        (top(112), top(8), true),
    ];
    for (at, tail, stranded) in cases {
        for many in [false, true] {
            let mut options = small(4096);
            if many {
                options.many(true);
            }
            let name = positions_at(at, tail, stranded, &options);
            let _remove = RemoveOnDrop(name.clone());
            // SAFETY: every end of these channels is this crate's, following its protocol.
            let mut rx = unsafe { Receiver::open_named(&name, &options) }.unwrap();
            // SAFETY: every end of these channels is this crate's, following its protocol.
            let mut tx = unsafe { Sender::open_named(&name, &options) }.unwrap();
            for round in 0..8 {
                take_any(&mut rx);
                if round == 4 {
                    drop(tx);
                    // SAFETY: every end of these channels is this crate's, following its protocol.
                    tx = unsafe { Sender::open_named(&name, &options) }.unwrap();
                }
                match tx.try_send(&[7u8; 100]) {
                    Ok(()) | Err(SendError::Full) | Err(SendError::Corrupt { .. }) => {}
                    Err(other) => panic!("unexpected error {other}"),
                }
            }
            drop(tx);
            for _ in 0..3 {
                take_any(&mut rx);
            }
        }
    }
}

#[test]
fn a_channel_maps_its_whole_ring_up_front_unless_told_not_to() {
    // A region's pages exist (tmpfs) only once something maps them in.
    for populate in [true, false] {
        let name = unique("populate");
        let mut options = small(1 << 20);
        options.populate(populate);
        // SAFETY: every end of these channels is this crate's, following its protocol.
        let _rx = unsafe { Receiver::create_named(&name, &options) }.unwrap();
        let file = std::fs::File::open(format!("/dev/shm/{name}")).unwrap();
        let residency = mmapkit::page_cache::residency(&file).unwrap();
        let (resident, total) = (residency.resident_pages(), residency.total_pages());
        assert!(total > 256, "a 1 MiB ring and its headers: {total} pages");
        if populate {
            assert_eq!(resident, total, "populated: every page mapped");
        } else {
            assert!(resident < total / 2, "not populated: {resident} of {total} pages mapped");
        }
    }

    // An end that opens a ring larger than the capacity it was given maps no
    // more than that: a peer cannot make it allocate more than it asked for.
    let name = unique("populate-bound");
    let mut lazy = small(1 << 20);
    lazy.populate(false);
    // SAFETY: every end of these channels is this crate's, following its protocol.
    let _rx = unsafe { Receiver::create_named(&name, &lazy) }.unwrap();
    // SAFETY: every end of these channels is this crate's, following its protocol.
    let _tx = unsafe { Sender::open_named(&name, &small(64 * 1024)) }.unwrap();
    let file = std::fs::File::open(format!("/dev/shm/{name}")).unwrap();
    let resident = mmapkit::page_cache::residency(&file).unwrap().resident_pages();
    assert!((16..=24).contains(&resident), "64 KiB of a 1 MiB ring and the headers: {resident} pages mapped");
}

#[test]
fn a_sender_catching_up_wakes_a_blocked_receiver() {
    // The receiver sleeps (its liveness check is far off); the sender that
    // attaches after the dead one publishes the stranded message and must
    // wake it, or the message waits out the receiver's whole timeout.
    let (name, mut rx) = stranded_for_a_blocking_receiver("catch-up-wakes", Duration::from_secs(60));
    // The new sender stays attached until the receiver is done: its
    // closing would wake the receiver too.
    let (done, wait_done) = std::sync::mpsc::channel::<()>();
    std::thread::scope(|s| {
        let name = &name;
        s.spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            // SAFETY: every end of these channels is this crate's, following its protocol.
            let next = unsafe { Sender::open_named(name, &small(4096)) }.unwrap();
            let _ = wait_done.recv_timeout(Duration::from_secs(15));
            drop(next);
        });
        let start = Instant::now();
        let got = rx.recv_timeout(Some(Duration::from_secs(10))).map(|m| m.to_vec());
        let waited = start.elapsed();
        done.send(()).unwrap();
        assert_eq!(got.unwrap(), b"stranded");
        // About 300 ms with the wake-up; without it, the whole 10 s nap.
        assert!(waited < Duration::from_secs(5), "the receiver slept {waited:?} past the catch-up");
    });
}

/// The `seq` and `waiters` words of channel `name`'s `data_ready` event.
fn data_ready_words(file: &std::fs::File) -> (u32, u32) {
    let mut words = [0u8; 8];
    file.read_exact_at(&mut words, DATA_READY_AT).unwrap();
    (u32::from_le_bytes(words[..4].try_into().unwrap()), u32::from_le_bytes(words[4..].try_into().unwrap()))
}

/// Whether reserving a 64-byte and then a 4 KiB message notified the
/// receiver, asleep on the channel, before either was committed.
fn reservations_notify_a_sleeping_receiver(tag: &str, many: bool, early: EarlyWake) -> [bool; 2] {
    let name = unique(tag);
    let mut options = small(1 << 16);
    // One nap covers the whole test: a nap that ended (for the liveness
    // check) would leave a moment with no sleeper counted.
    options.wait(Wait::Block).peer_check(Duration::from_secs(60)).early_wake(early);
    if many {
        options.many(true);
    }
    // SAFETY: every end of these channels is this crate's, following its protocol.
    let mut tx = unsafe { Sender::create_named(&name, &options) }.unwrap();
    // SAFETY: as above.
    let mut rx = unsafe { Receiver::open_named(&name, &options) }.unwrap();
    let file = std::fs::File::open(format!("/dev/shm/{name}")).unwrap();
    // The receiver says when it has taken each message, so that a sleeper
    // counted below is its next wait, not the one it is waking from.
    let (took, taken) = std::sync::mpsc::channel();
    std::thread::scope(|s| {
        let receiver = s.spawn(move || {
            let mut lens = Vec::new();
            for _ in 0..2 {
                lens.push(rx.recv_timeout(Some(Duration::from_secs(10))).map(|m| m.len()));
                took.send(()).unwrap();
            }
            lens
        });
        let asleep = || {
            let start = Instant::now();
            while data_ready_words(&file).1 == 0 {
                assert!(start.elapsed() < Duration::from_secs(10), "the receiver never went to sleep");
                std::thread::sleep(Duration::from_millis(1));
            }
            data_ready_words(&file).0
        };
        let notified = [64, 4096].map(|len| {
            let before = asleep();
            let mut reservation = tx.reserve(len).unwrap();
            let notified = data_ready_words(&file).0 != before;
            reservation.fill(7);
            reservation.commit();
            taken.recv_timeout(Duration::from_secs(10)).unwrap();
            notified
        });
        let lens = receiver.join().unwrap();
        assert_eq!(lens.into_iter().map(Result::unwrap).collect::<Vec<_>>(), [64, 4096]);
        notified
    })
}

#[test]
fn a_large_reservation_wakes_a_sleeping_receiver_before_its_commit() {
    // A small message is written too fast to gain from waking early: the
    // receiver is notified at the commit only. A large one notifies it at the
    // reservation too, before a byte is written.
    assert_eq!(reservations_notify_a_sleeping_receiver("early-wake", false, EarlyWake::Always), [false, true]);
    // With many receivers the commit might wake another one than the early
    // notify did, so neither size notifies early.
    assert_eq!(reservations_notify_a_sleeping_receiver("early-wake-many", true, EarlyWake::Always), [false, false]);
    assert_eq!(reservations_notify_a_sleeping_receiver("early-wake-never", false, EarlyWake::Never), [false, false]);
    // By default only once waking the receiver has been slow, which a
    // fresh sender has not seen (its 64-byte message's wake-up is not timed).
    let default = EarlyWake::default();
    assert_eq!(reservations_notify_a_sleeping_receiver("early-wake-default", false, default), [false, false]);
}

#[test]
fn positions_a_peer_misaligned_never_crash_an_end_that_attaches() {
    // Honest ends only store multiples of 8; an end attaching to odd
    // positions must not read or write a header word off its alignment (a
    // debug build checks every such access and would panic).
    let name = unique("misaligned");
    let mut kept = small(4096);
    kept.region(RegionOptions::new().keep(true).clone());
    // SAFETY: every end of these channels is this crate's, following its protocol.
    let rx = unsafe { Receiver::create_named(&name, &kept) }.unwrap();
    // SAFETY: every end of these channels is this crate's, following its protocol.
    let mut tx = unsafe { Sender::open_named(&name, &small(4096)) }.unwrap();
    tx.send(b"before").unwrap();
    drop(tx);
    drop(rx);
    let file = std::fs::OpenOptions::new().write(true).open(format!("/dev/shm/{name}")).unwrap();
    file.write_all_at(&13u64.to_le_bytes(), TAIL_AT).unwrap();
    file.write_all_at(&5u64.to_le_bytes(), TAIL_AT + 128).unwrap();
    // SAFETY: every end of these channels is this crate's, following its protocol.
    let mut rx = unsafe { Receiver::open_named(&name, &small(4096)) }.unwrap();
    // SAFETY: every end of these channels is this crate's, following its protocol.
    let mut tx = unsafe { Sender::open_named(&name, &small(4096)) }.unwrap();
    for _ in 0..3 {
        let _ = tx.try_send(b"after");
        match rx.try_recv() {
            Ok(_) | Err(RecvError::Empty) | Err(RecvError::Corrupt { .. }) => {}
            Err(other) => panic!("unexpected error {other}"),
        }
    }
    std::fs::remove_file(format!("/dev/shm/{name}")).unwrap();
}

#[test]
fn a_million_messages_cross_processes_in_order_none_lost() {
    for wait in ["spin", "block"] {
        let name = unique("million");
        let mut options = ChannelOptions::new();
        options.capacity(256 * 1024);
        // SAFETY: every end of these channels is this crate's, following its protocol.
        let mut rx = unsafe { Receiver::create_named(&name, &options) }.unwrap();
        let mut producer = child_command("child_send_a_million", &name)
            .env("MMAPKIT_WAIT", wait)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let mut buf = vec![0u8; 2048];
        let start = Instant::now();
        for seq in 0..MILLION {
            let n = rx.recv_into(&mut buf, Some(Duration::from_secs(30))).unwrap();
            let expected = message(seq);
            assert_eq!(&buf[..n], &expected[..], "message {seq} ({wait})");
        }
        let err = rx.recv_timeout(Some(Duration::from_secs(10))).unwrap_err();
        assert!(matches!(err, RecvError::PeerGone { .. }), "nothing after the millionth: {err}");
        assert!(producer.wait().unwrap().success());
        eprintln!("{MILLION} messages ({wait}) in {:?}", start.elapsed());
    }
}

#[test]
#[ignore = "child process of a_million_messages_cross_processes_in_order_none_lost"]
fn child_send_a_million() {
    let mut options = ChannelOptions::new();
    options.wait(if std::env::var("MMAPKIT_WAIT").as_deref() == Ok("spin") { Wait::Spin } else { Wait::Block });
    // SAFETY: every end of these channels is this crate's, following its protocol.
    let mut tx = unsafe { Sender::open_named(&name_from_env(), &options) }.unwrap();
    for seq in 0..MILLION {
        let bytes = message(seq);
        let mut slot = tx.reserve(bytes.len()).unwrap();
        slot.copy_from_slice(&bytes);
        slot.commit();
    }
}

#[test]
fn a_sender_killed_mid_message_is_peer_gone_and_the_half_message_never_arrives() {
    let name = unique("killed-sender");
    // SAFETY: every end of these channels is this crate's, following its protocol.
    let mut rx = unsafe { Receiver::create_named(&name, &small(65536)) }.unwrap();
    let Started { child: mut sender, stdout: _out } =
        spawn_until("child_send_then_hang_mid_message", &name, "mid-message");
    sender.kill().unwrap();
    sender.wait().unwrap();
    for seq in 0..3 {
        assert_eq!(&*rx.recv_timeout(Some(Duration::from_secs(5))).unwrap(), &message(seq)[..]);
    }
    let start = Instant::now();
    let err = rx.recv_timeout(Some(Duration::from_secs(10))).unwrap_err();
    assert!(matches!(err, RecvError::PeerGone { peer: Role::Sender, .. }), "{err}");
    assert!(start.elapsed() < Duration::from_secs(1), "noticed after {:?}", start.elapsed());
}

#[test]
#[ignore = "child process of a_sender_killed_mid_message_is_peer_gone_and_the_half_message_never_arrives"]
fn child_send_then_hang_mid_message() {
    // SAFETY: every end of these channels is this crate's, following its protocol.
    let mut tx = unsafe { Sender::open_named(&name_from_env(), &small(65536)) }.unwrap();
    for seq in 0..3 {
        tx.send(&message(seq)).unwrap();
    }
    let mut slot = tx.reserve(500).unwrap();
    slot[..250].fill(0xEE); // half written, never committed
    println!("mid-message");
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn a_receiver_killed_while_the_sender_waits_is_peer_gone() {
    let name = unique("killed-receiver");
    // SAFETY: every end of these channels is this crate's, following its protocol.
    let mut tx = unsafe { Sender::create_named(&name, &small(4096)) }.unwrap();
    let Started { child: mut receiver, stdout: _out } = spawn_until("child_attach_and_hang", &name, "attached");
    while tx.try_send(&[1u8; 1000]).is_ok() {}
    receiver.kill().unwrap();
    receiver.wait().unwrap();
    let start = Instant::now();
    let err = tx.send_timeout(&[1u8; 1000], Some(Duration::from_secs(10))).unwrap_err();
    assert!(matches!(err, SendError::PeerGone { peer: Role::Receiver, .. }), "{err}");
    assert!(start.elapsed() < Duration::from_secs(1), "noticed after {:?}", start.elapsed());
}

/// Voluntary context switches of this thread so far: one per sleep it went into.
fn thread_sleeps() -> u64 {
    let status = std::fs::read_to_string("/proc/thread-self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("voluntary_ctxt_switches:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// How many times a receiver (blocking, looking at its peer every 10 ms,
/// with or without the peer watch) goes to sleep while it waits half a
/// second for a message.
fn sleeps_waiting_half_a_second(peer_watch: bool) -> u64 {
    let name = unique("untimed");
    let mut options = small(4096);
    options.wait(Wait::Block).peer_check(Duration::from_millis(10)).peer_watch(peer_watch);
    // SAFETY: every end of these channels is this crate's, following its protocol.
    let mut rx = unsafe { Receiver::create_named(&name, &options) }.unwrap();
    // SAFETY: as above.
    let mut tx = unsafe { Sender::open_named(&name, &options) }.unwrap();
    let receiver = std::thread::spawn(move || {
        let before = thread_sleeps();
        let got = rx.recv().unwrap().to_vec();
        (got, thread_sleeps() - before)
    });
    std::thread::sleep(Duration::from_millis(500));
    tx.send(b"after half a second").unwrap();
    let (got, sleeps) = receiver.join().unwrap();
    assert_eq!(got, b"after half a second");
    sleeps
}

#[test]
fn a_blocked_end_with_no_deadline_sleeps_until_woken_not_on_a_timer() {
    // The peer watch looks at the peer, so the waiting thread itself sleeps
    // on its futex with no timeout. Without the watch, its sleeps are timed
    // for its next look: about 50 in the half second.
    let watched = sleeps_waiting_half_a_second(true);
    assert!(watched <= 5, "with the watch, the receiver went to sleep {watched} times");
    let unwatched = sleeps_waiting_half_a_second(false);
    assert!(unwatched >= 20, "without the watch, the receiver went to sleep only {unwatched} times");
}

/// Runs `wait` on another thread, kills `peer` once it sleeps, and returns
/// what `wait` returned and how long after the kill; fails (instead of
/// hanging) if it takes over 10 s.
fn ends_after_kill<T: Send + 'static>(
    wait: impl FnOnce() -> T + Send + 'static,
    peer: &mut std::process::Child,
) -> (T, Duration) {
    let (done, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let value = wait();
        let _ = done.send((value, Instant::now()));
    });
    // Long enough for the waiter to be asleep.
    std::thread::sleep(Duration::from_millis(300));
    peer.kill().unwrap();
    peer.wait().unwrap();
    let killed = Instant::now();
    let (value, at) = result.recv_timeout(Duration::from_secs(10)).expect("the waiter never woke");
    (value, at.saturating_duration_since(killed))
}

#[test]
fn a_receiver_blocked_with_no_deadline_learns_its_sender_was_killed() {
    let name = unique("killed-untimed-sender");
    let mut options = small(65536);
    options.wait(Wait::Block);
    // SAFETY: every end of these channels is this crate's, following its protocol.
    let mut rx = unsafe { Receiver::create_named(&name, &options) }.unwrap();
    let Started { child: mut sender, stdout: _out } =
        spawn_until("child_send_then_hang_mid_message", &name, "mid-message");
    let (outcome, after) = ends_after_kill(
        move || {
            let taken: Vec<Vec<u8>> = (0..3).map(|_| rx.recv().unwrap().to_vec()).collect();
            (taken, rx.recv().map(|m| m.to_vec()))
        },
        &mut sender,
    );
    let (taken, last) = outcome;
    assert_eq!(taken, (0..3).map(message).collect::<Vec<_>>());
    let err = last.unwrap_err();
    assert!(matches!(err, RecvError::PeerGone { peer: Role::Sender, .. }), "{err}");
    assert!(after < Duration::from_secs(1), "noticed {after:?} after the kill");
}

#[test]
fn a_sender_blocked_with_no_deadline_learns_its_receiver_was_killed() {
    let name = unique("killed-untimed-receiver");
    let mut options = small(4096);
    options.wait(Wait::Block);
    // SAFETY: every end of these channels is this crate's, following its protocol.
    let mut tx = unsafe { Sender::create_named(&name, &options) }.unwrap();
    let Started { child: mut receiver, stdout: _out } = spawn_until("child_attach_and_hang", &name, "attached");
    while tx.try_send(&[1u8; 1000]).is_ok() {}
    let (last, after) = ends_after_kill(move || tx.send(&[1u8; 1000]), &mut receiver);
    let err = last.unwrap_err();
    assert!(matches!(err, SendError::PeerGone { peer: Role::Receiver, .. }), "{err}");
    assert!(after < Duration::from_secs(1), "noticed {after:?} after the kill");
}

#[test]
#[ignore = "child process of a_receiver_killed_while_the_sender_waits_is_peer_gone"]
fn child_attach_and_hang() {
    // SAFETY: every end of these channels is this crate's, following its protocol.
    let _rx = unsafe { Receiver::open_named(&name_from_env(), &small(4096)) }.unwrap();
    println!("attached");
    std::thread::sleep(Duration::from_secs(60));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(100))]
    #[test]
    fn a_peer_scribbling_on_the_ring_gets_errors_never_a_crash(
        seed_messages in 0u64..40,
        scribbles in
            proptest::collection::vec((0u64..(512 + 4096), proptest::collection::vec(any::<u8>(), 1..32)), 1..8),
    ) {
        let name = unique("hostile");
        // SAFETY: every end of these channels is this crate's, following its protocol.
        let mut rx = unsafe { Receiver::create_named(&name, &small(4096)) }.unwrap();
        // SAFETY: every end of these channels is this crate's, following its protocol.
        let mut tx = unsafe { Sender::open_named(&name, &small(4096)) }.unwrap();
        for seq in 0..seed_messages {
            let bytes = message(seq);
            let _ = tx.try_send(&bytes[..bytes.len().min(300)]);
        }
        // The payload starts after the 128-byte region header.
        let file = std::fs::OpenOptions::new().write(true).open(format!("/dev/shm/{name}")).unwrap();
        for (offset, bytes) in &scribbles {
            file.write_all_at(bytes, 128 + offset).unwrap();
        }
        for _ in 0..100 {
            match rx.try_recv() {
                Ok(message) => prop_assert!(message.len() <= 2040),
                Err(RecvError::Empty) => break,
                Err(RecvError::Corrupt { .. }) | Err(RecvError::PeerGone { .. }) => break,
                Err(other) => prop_assert!(false, "unexpected error {other}"),
            }
        }
        for _ in 0..10 {
            match tx.try_send(b"after") {
                Ok(()) | Err(SendError::Full) | Err(SendError::Corrupt { .. }) | Err(SendError::PeerGone { .. }) => {}
                Err(other) => prop_assert!(false, "unexpected error {other}"),
            }
        }
        // A sender attaching to the scribbled ring reads its positions and
        // walks the records past its tail: errors at worst, here too.
        drop(tx);
        // SAFETY: every end of these channels is this crate's, following its protocol.
        if let Ok(mut again) = unsafe { Sender::open_named(&name, &small(4096)) } {
            for _ in 0..10 {
                match again.try_send(b"again") {
                    Ok(())
                    | Err(SendError::Full)
                    | Err(SendError::Corrupt { .. })
                    | Err(SendError::PeerGone { .. }) => {}
                    Err(other) => prop_assert!(false, "unexpected error {other}"),
                }
                match rx.try_recv() {
                    Ok(message) => prop_assert!(message.len() <= 2040),
                    Err(RecvError::Empty) | Err(RecvError::Corrupt { .. }) | Err(RecvError::PeerGone { .. }) => {}
                    Err(other) => prop_assert!(false, "unexpected error {other}"),
                }
            }
        }
    }
}
