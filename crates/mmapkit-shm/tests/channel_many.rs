//! The many-to-many channel: two senders and two receivers (threads and
//! processes), each message once, each sender's order kept, and a sender
//! killed while it holds the senders' lock.

mod common;

use common::{Started, child_command, lose_last_tail_store, name_from_env, spawn_until, unique};

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use mmapkit_shm::{ChannelOptions, Receiver, RecvError, Role, SendError, Sender, ShmError, Wait};

fn many() -> ChannelOptions {
    let mut options = ChannelOptions::new();
    options.many(true).capacity(64 * 1024);
    options
}

/// Message `seq` of sender `from`: its tag, then bytes that depend on both.
fn message(from: u32, seq: u32) -> Vec<u8> {
    let mut state = (u64::from(from) << 32 | u64::from(seq)).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let len = 8 + (state % 200) as usize;
    let mut bytes: Vec<u8> = Vec::with_capacity(len);
    bytes.extend_from_slice(&from.to_le_bytes());
    bytes.extend_from_slice(&seq.to_le_bytes());
    while bytes.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.push(state as u8);
    }
    bytes
}

/// Checks a received message and returns its (sender, seq).
fn check(bytes: &[u8]) -> (u32, u32) {
    let from = u32::from_le_bytes(bytes[..4].try_into().unwrap());
    let seq = u32::from_le_bytes(bytes[4..8].try_into().unwrap());
    assert_eq!(bytes, &message(from, seq)[..], "message {seq} of sender {from} is damaged");
    (from, seq)
}

/// Verifies that the receivers together got every message once, each
/// receiver seeing each sender's messages in order.
fn verify(per_receiver: &[Vec<(u32, u32)>], senders: u32, per_sender: u32) {
    let mut seen: BTreeMap<(u32, u32), usize> = BTreeMap::new();
    for got in per_receiver {
        let mut last: BTreeMap<u32, u32> = BTreeMap::new();
        for &(from, seq) in got {
            if let Some(&before) = last.get(&from) {
                assert!(seq > before, "sender {from}: {seq} after {before}");
            }
            last.insert(from, seq);
            *seen.entry((from, seq)).or_default() += 1;
        }
    }
    assert_eq!(seen.len(), (senders * per_sender) as usize, "messages lost");
    assert!(seen.values().all(|&n| n == 1), "a message arrived twice");
}

#[test]
fn two_senders_two_receivers_in_threads() {
    let name = unique("many-threads");
    // SAFETY: every end of these channels is this crate's, following its protocol.
    let keeper = unsafe { Receiver::create_named(&name, &many()) }.unwrap();
    // A sender held open until the real ones are done, so that the receivers
    // cannot see "every sender gone" between one sender's exit and the next's start.
    // SAFETY: every end of these channels is this crate's, following its protocol.
    let hold = unsafe { Sender::open_named(&name, &many()) }.unwrap();
    const PER_SENDER: u32 = 50_000;
    let results: Vec<Vec<(u32, u32)>> = std::thread::scope(|s| {
        let senders: Vec<_> = (0..2u32)
            .map(|from| {
                let name = &name;
                s.spawn(move || {
                    // SAFETY: every end of these channels is this crate's, following its protocol.
                    let mut tx = unsafe { Sender::open_named(name, &many()) }.unwrap();
                    for seq in 0..PER_SENDER {
                        tx.send(&message(from, seq)).unwrap();
                    }
                })
            })
            .collect();
        let receivers: Vec<_> = (0..2)
            .map(|_| {
                let name = &name;
                s.spawn(move || {
                    // SAFETY: every end of these channels is this crate's, following its protocol.
                    let mut rx = unsafe { Receiver::open_named(name, &many()) }.unwrap();
                    let mut got = Vec::new();
                    loop {
                        match rx.recv_timeout(Some(Duration::from_secs(20))) {
                            Ok(m) => got.push(check(&m)),
                            Err(RecvError::PeerGone { .. }) => break got,
                            Err(e) => panic!("{e}"),
                        }
                    }
                })
            })
            .collect();
        for sender in senders {
            sender.join().unwrap();
        }
        drop(hold);
        receivers.into_iter().map(|h| h.join().unwrap()).collect()
    });
    drop(keeper);
    verify(&results, 2, PER_SENDER);
}

const PROCESS_PER_SENDER: u32 = 500_000;

#[test]
fn a_million_messages_two_sender_and_two_receiver_processes() {
    let name = unique("many-procs");
    let dir = tempfile::tempdir().unwrap();
    // The parent creates the channel as a receiver that never receives, and
    // holds a sender open until the sending processes are done (see the
    // threads test).
    // SAFETY: every end of these channels is this crate's, following its protocol.
    let keeper = unsafe { Receiver::create_named(&name, &many()) }.unwrap();
    // SAFETY: every end of these channels is this crate's, following its protocol.
    let hold = unsafe { Sender::open_named(&name, &many()) }.unwrap();
    let receivers: Vec<_> = (0..2)
        .map(|i| {
            let out = dir.path().join(format!("received-{i}"));
            child_command("child_receive_until_gone", &name)
                .env("MMAPKIT_OUT", &out)
                .stdout(Stdio::null())
                .spawn()
                .map(|c| (c, out))
                .unwrap()
        })
        .collect();
    let senders: Vec<_> = (0..2u32)
        .map(|from| {
            child_command("child_send_half_a_million", &name)
                .env("MMAPKIT_FROM", from.to_string())
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut sender in senders {
        assert!(sender.wait().unwrap().success());
    }
    drop(hold);
    let mut results = Vec::new();
    for (mut receiver, out) in receivers {
        assert!(receiver.wait().unwrap().success());
        let bytes = std::fs::read(out).unwrap();
        results.push(
            bytes
                .chunks_exact(8)
                .map(|c| {
                    (u32::from_le_bytes(c[..4].try_into().unwrap()), u32::from_le_bytes(c[4..].try_into().unwrap()))
                })
                .collect::<Vec<_>>(),
        );
    }
    drop(keeper);
    verify(&results, 2, PROCESS_PER_SENDER);
}

#[test]
#[ignore = "child process of a_million_messages_two_sender_and_two_receiver_processes"]
fn child_send_half_a_million() {
    let from: u32 = std::env::var("MMAPKIT_FROM").unwrap().parse().unwrap();
    // SAFETY: every end of these channels is this crate's, following its protocol.
    let mut tx = unsafe { Sender::open_named(&name_from_env(), &many()) }.unwrap();
    for seq in 0..PROCESS_PER_SENDER {
        let bytes = message(from, seq);
        let mut slot = tx.reserve(bytes.len()).unwrap();
        slot.copy_from_slice(&bytes);
        slot.commit();
    }
}

#[test]
#[ignore = "child process of a_million_messages_two_sender_and_two_receiver_processes"]
fn child_receive_until_gone() {
    let out = std::env::var("MMAPKIT_OUT").unwrap();
    // SAFETY: every end of these channels is this crate's, following its protocol.
    let mut rx = unsafe { Receiver::open_named(&name_from_env(), &many()) }.unwrap();
    let mut log = Vec::new();
    loop {
        match rx.recv_timeout(Some(Duration::from_secs(60))) {
            Ok(m) => {
                let (from, seq) = check(&m);
                log.extend_from_slice(&from.to_le_bytes());
                log.extend_from_slice(&seq.to_le_bytes());
            }
            Err(RecvError::PeerGone { .. }) => break,
            Err(e) => panic!("{e}"),
        }
    }
    std::fs::write(out, log).unwrap();
}

#[test]
fn a_sender_killed_holding_the_lock_does_not_block_the_others() {
    let name = unique("many-killed");
    // SAFETY: every end of these channels is this crate's, following its protocol.
    let mut rx = unsafe { Receiver::create_named(&name, &many()) }.unwrap();
    let Started { mut child, stdout: _out } = spawn_until("child_reserve_and_hang", &name, "holding");
    child.kill().unwrap();
    child.wait().unwrap();
    // The dead sender held the senders' lock mid-message: a live sender
    // takes it over and its messages, only its messages, arrive.
    // SAFETY: every end of these channels is this crate's, following its protocol.
    let mut tx = unsafe { Sender::open_named(&name, &many()) }.unwrap();
    for seq in 0..10 {
        tx.send_timeout(&message(7, seq), Some(Duration::from_secs(5))).unwrap();
    }
    for seq in 0..10 {
        let m = rx.recv_timeout(Some(Duration::from_secs(5))).unwrap();
        assert_eq!(check(&m), (7, seq));
    }
    assert!(matches!(rx.try_recv(), Err(RecvError::Empty)));
}

#[test]
fn a_message_committed_by_a_sender_that_died_before_publishing_it_is_kept() {
    // The state a sender leaves when it dies holding the senders' lock between
    // committing a message and publishing the tail: the tail word rolled back
    // over its message, and the lock's owner dead. The next sender must write
    // after that message, whether a receiver has taken it already or not.
    for taken_first in [false, true] {
        let name = unique("many-unpublished");
        // SAFETY: every end of these channels is this crate's, following its protocol.
        let mut rx = unsafe { Receiver::create_named(&name, &many()) }.unwrap();
        // SAFETY: every end of these channels is this crate's, following its protocol.
        let mut tx = unsafe { Sender::open_named(&name, &many()) }.unwrap();
        let first = message(1, 0);
        tx.send(&first).unwrap();
        let Started { mut child, stdout: _out } = spawn_until("child_reserve_and_hang", &name, "holding");
        child.kill().unwrap();
        child.wait().unwrap();
        lose_last_tail_store(&name, first.len());
        if taken_first {
            assert_eq!(check(&rx.recv_timeout(Some(Duration::from_secs(5))).unwrap()), (1, 0));
        }
        // The sender that takes the lock over from the dead one gives it
        // back without committing; what it learnt must outlive its turn.
        drop(tx.reserve(10).unwrap());
        for seq in 1..4 {
            tx.send_timeout(&message(1, seq), Some(Duration::from_secs(5))).unwrap();
        }
        let from = if taken_first { 1 } else { 0 };
        for seq in from..4 {
            let m = rx.recv_timeout(Some(Duration::from_secs(5))).unwrap();
            assert_eq!(check(&m), (1, seq), "taken first: {taken_first}");
        }
        assert!(matches!(rx.try_recv(), Err(RecvError::Empty)));
    }
}

#[test]
fn a_receiver_blocked_with_no_deadline_learns_when_the_last_sender_is_killed() {
    let name = unique("many-untimed");
    let mut options = many();
    options.wait(Wait::Block);
    // SAFETY: every end of these channels is this crate's, following its protocol.
    let mut rx = unsafe { Receiver::create_named(&name, &options) }.unwrap();
    let Started { child: mut first, stdout: _first_out } = spawn_until("child_open_and_hang", &name, "attached");
    let Started { child: mut second, stdout: _second_out } = spawn_until("child_open_and_hang", &name, "attached");
    let (done, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let outcome = rx.recv().map(|m| m.to_vec());
        let _ = done.send((outcome, Instant::now()));
    });
    first.kill().unwrap();
    first.wait().unwrap();
    // One sender is left: the receiver sleeps on (past three 100 ms looks).
    assert!(result.recv_timeout(Duration::from_millis(400)).is_err(), "woke with a sender still alive");
    second.kill().unwrap();
    second.wait().unwrap();
    let killed = Instant::now();
    let (outcome, at) = result.recv_timeout(Duration::from_secs(10)).expect("the receiver never woke");
    let err = outcome.unwrap_err();
    assert!(matches!(err, RecvError::PeerGone { peer: Role::Sender, .. }), "{err}");
    let after = at.saturating_duration_since(killed);
    assert!(after < Duration::from_secs(1), "noticed {after:?} after the last kill");
}

#[test]
#[ignore = "child process of a_receiver_blocked_with_no_deadline_learns_when_the_last_sender_is_killed"]
fn child_open_and_hang() {
    // SAFETY: every end of these channels is this crate's, following its protocol.
    let _tx = unsafe { Sender::open_named(&name_from_env(), &many()) }.unwrap();
    println!("attached");
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
#[ignore = "child process of the tests of a sender killed holding the lock"]
fn child_reserve_and_hang() {
    // SAFETY: every end of these channels is this crate's, following its protocol.
    let mut tx = unsafe { Sender::open_named(&name_from_env(), &many()) }.unwrap();
    let mut slot = tx.reserve(100).unwrap();
    slot[..50].fill(0xEE);
    println!("holding");
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn one_to_one_and_many_to_many_channels_refuse_each_other() {
    let name = unique("kinds");
    // SAFETY: every end of these channels is this crate's, following its protocol.
    let _rx = unsafe { Receiver::create_named(&name, &many()) }.unwrap();
    // SAFETY: every end of these channels is this crate's, following its protocol.
    let err = unsafe { Sender::open_named(&name, &ChannelOptions::new()) }.unwrap_err();
    assert!(matches!(err, ShmError::WrongLayout { .. }), "{err}");
}

#[test]
fn an_end_holding_its_side_lock_does_not_stall_the_others_past_their_timeouts() {
    let name = unique("many-held");
    // SAFETY: every end of these channels is this crate's, following its protocol.
    let mut keeper = unsafe { Receiver::create_named(&name, &many()) }.unwrap();
    // SAFETY: as above.
    let mut tx = unsafe { Sender::open_named(&name, &many()) }.unwrap();
    tx.send(&message(1, 0)).unwrap();
    tx.send(&message(1, 1)).unwrap();
    let held = std::sync::Barrier::new(3);
    let done = std::sync::Barrier::new(3);
    std::thread::scope(|s| {
        s.spawn(|| {
            let message = keeper.recv().unwrap(); // holds the receivers' lock
            assert_eq!(check(&message), (1, 0));
            held.wait();
            done.wait();
        });
        s.spawn(|| {
            // SAFETY: as above.
            let mut other = unsafe { Sender::open_named(&name, &many()) }.unwrap();
            let _slot = other.reserve(10).unwrap(); // holds the senders' lock
            held.wait();
            done.wait();
        });
        held.wait();
        // SAFETY: as above.
        let mut rx = unsafe { Receiver::open_named(&name, &many()) }.unwrap();
        let start = std::time::Instant::now();
        let err = rx.recv_timeout(Some(Duration::from_millis(200))).unwrap_err();
        assert!(matches!(err, RecvError::Timeout(_)), "{err}");
        let err = tx.send_timeout(b"x", Some(Duration::from_millis(200))).unwrap_err();
        assert!(matches!(err, SendError::Timeout(_)), "{err}");
        assert!(matches!(tx.try_send(b"x"), Err(SendError::Full)));
        assert!(start.elapsed() < Duration::from_secs(5));
        done.wait();
    });
    // Once released, the rest flows again.
    // SAFETY: as above.
    let mut rx = unsafe { Receiver::open_named(&name, &many()) }.unwrap();
    assert_eq!(check(&rx.recv_timeout(Some(Duration::from_secs(5))).unwrap()), (1, 1));
}
