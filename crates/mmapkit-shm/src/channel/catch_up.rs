//! Catching up with a sender that died between committing a message and
//! publishing the tail past it: the next sender to take over the ring (the
//! only sender of a one-to-one channel as it attaches, or the one that takes
//! the senders' lock from a dead holder) publishes what was committed.

use std::sync::atomic::Ordering;

use super::end::End;
use super::ring::{check_positions, check_record, read_record};

/// Moves the published `tail` past records a dead sender committed but did
/// not publish ([`committed_end`]), and wakes the receivers, which wait on the
/// tail; returns the new tail. Only a sender that no other sender can race
/// may call it: the only sender of a one-to-one channel, or one holding the
/// senders' lock.
pub(super) fn catch_up(end: &End, head: u64, published: u64) -> u64 {
    let tail = committed_end(end, head, published);
    if tail != published {
        end.ring().tail.0.store(tail, Ordering::Release);
        end.ring().data_ready.notify_all();
        crate::bell::ring(end.bells_of(crate::role::Role::Receiver));
    }
    tail
}

/// Where the committed records end, from the published `tail` on. A sender
/// that died between a commit and its store of `tail` left committed records
/// past the tail it published (those of one reservation: a message, and the
/// padding before it), which the receiver may have read already (its head is
/// then past the tail); the next sender must write after them, not over
/// them. Stops at the first zero header, or one that does not check out.
fn committed_end(end: &End, head: u64, tail: u64) -> u64 {
    let ahead = head.checked_sub(tail).is_some_and(|d| d <= end.capacity as u64);
    let mut tail = if ahead { head } else { tail };
    while let Ok(used) = check_positions(head, tail, end.capacity) {
        let offset = (tail as usize) & (end.capacity - 1);
        // SAFETY: offset is inside the data and 8-aligned: positions are read through `aligned()` and move by record
        // sizes, multiples of 8.
        let Some(record) = (unsafe { read_record(end.data.add(offset)) }) else { break };
        match check_record(record, offset, end.capacity) {
            Ok(size) if used + size <= end.capacity => tail = tail.wrapping_add(size as u64),
            _ => break,
        }
    }
    tail
}
