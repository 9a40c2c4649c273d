//! A loom model check of the channel's commit protocol: every interleaving of
//! one sender and one receiver (within loom's bounds) on a tiny ring.
//!
//! The real ring lives in shared memory that loom cannot track, so this is a
//! faithful miniature of `src/channel`: the same orderings and the same steps.
//! Records are one slot each. The sender waits for room keeping one slot
//! spare (reading `head` with acquire, only when the head it last read shows
//! too little room), writes the payload, zeroes the next slot's header,
//! commits the header with release, then stores `tail` with release. The
//! receiver, once its head has caught up with the tail it last read, waits
//! for `tail` to move (acquire), then reads the header at its head with
//! acquire, which must be committed by then, reads the payload, and stores
//! the new head with release. Loom checks that no payload is read while being
//! written (a data race on the `UnsafeCell`) and the test that every message
//! arrives in order, with its header committed wherever the tail said so.

use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::sync::atomic::{AtomicU64, Ordering};
use loom::thread;

const SLOTS: usize = 3;
const MESSAGES: u64 = 4; // more than the ring holds: the ring wraps

struct Ring {
    headers: [AtomicU64; SLOTS],
    payloads: [UnsafeCell<u64>; SLOTS],
    head: AtomicU64,
    tail: AtomicU64,
}

impl Ring {
    fn new() -> Ring {
        Ring {
            headers: std::array::from_fn(|_| AtomicU64::new(0)),
            payloads: std::array::from_fn(|_| UnsafeCell::new(0)),
            head: AtomicU64::new(0),
            tail: AtomicU64::new(0),
        }
    }
}

fn send_all(ring: &Ring) {
    let mut head_seen = 0u64;
    for seq in 1..=MESSAGES {
        let tail = seq - 1; // bytes (here: slots) committed so far
        // Room: one slot always spare, so zeroing the next header never
        // touches a record the receiver has not read.
        while tail + 1 - head_seen > (SLOTS - 1) as u64 {
            head_seen = ring.head.load(Ordering::Acquire);
            if tail + 1 - head_seen > (SLOTS - 1) as u64 {
                thread::yield_now();
            }
        }
        let slot = (tail % SLOTS as u64) as usize;
        let next = ((tail + 1) % SLOTS as u64) as usize;
        // SAFETY: the slot is free space: the receiver released it (head acquired above) and does not reach it
        // before the commit below.
        ring.payloads[slot].with_mut(|p| unsafe { *p = seq * 100 });
        ring.headers[next].store(0, Ordering::Relaxed);
        ring.headers[slot].store(seq, Ordering::Release);
        ring.tail.store(tail + 1, Ordering::Release);
    }
}

fn receive_all(ring: &Ring) {
    let mut head = 0u64;
    let mut tail_seen = 0u64;
    for expected in 1..=MESSAGES {
        while head == tail_seen {
            tail_seen = ring.tail.load(Ordering::Acquire);
            if head == tail_seen {
                thread::yield_now();
            }
        }
        let slot = (head % SLOTS as u64) as usize;
        let seq = ring.headers[slot].load(Ordering::Acquire);
        assert_eq!(seq, expected, "the tail moved past a header not yet committed, or messages came out of order");
        // SAFETY: the acquire load saw the sender's release commit, so the payload write happened before this read;
        // the sender will not touch the slot again until the head store below.
        let payload = ring.payloads[slot].with(|p| unsafe { *p });
        assert_eq!(payload, expected * 100, "a payload was read before it was complete");
        head += 1;
        ring.head.store(head, Ordering::Release);
    }
}

#[test]
fn the_commit_protocol_delivers_every_message_once_in_order_without_races() {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.check(|| {
        let ring = Arc::new(Ring::new());
        let sender = {
            let ring = Arc::clone(&ring);
            thread::spawn(move || send_all(&ring))
        };
        receive_all(&ring);
        sender.join().unwrap();
    });
}
