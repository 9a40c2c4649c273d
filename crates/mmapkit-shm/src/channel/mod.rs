//! A bounded channel of variable-size messages in shared memory, zero-copy on
//! both ends: one sender and one receiver, or (with
//! [`ChannelOptions::many`]) any number of each.
//!
//! The sender [`reserve`](Sender::reserve)s room, writes the message in place
//! and [`commit`](Reservation::commit)s it; the receiver gets a [`Message`]
//! that borrows the bytes in the ring and releases them when dropped. Copying
//! [`send`](Sender::send) and [`recv_into`](Receiver::recv_into) are there too.
//! Messages arrive in order, once each. Either end learns within
//! [`ChannelOptions::peer_check`] (100 ms by default) that the other died,
//! through a byte-range lock the kernel releases when a process dies; a
//! message the sender had not committed when it died is never delivered.
//! A spinning end looks at that lock itself; for ends that may sleep, one
//! thread per process (the peer watch, started with the first such end)
//! looks and wakes them, so that a wait with no deadline sleeps on its futex
//! with no timeout.
//!
//! With many senders and receivers, senders take a robust process-shared
//! lock from reserve to commit and receivers from receive to release: each
//! message still arrives once, each sender's messages in its order, and a
//! holder that dies (even mid-message) leaves a ring the next taker can use.
//! The locks are robust mutexes in the shared memory, so unlike the ring's
//! positions and lengths they cannot be validated: a peer that scribbles on
//! them breaks the constructors' contract.

// What a channel is made with.
mod options;

// The ring in shared memory, and the two kinds of channel laid out in it.
mod kind;
mod ring;

// Whether the other end is alive, and the thread that looks for sleepers.
mod peer;

// What both ends share: their constructors, their state, their side locks
// (many-to-many), and how they wait.
mod constructors;
mod end;
mod failure;
mod side_lock;
mod wait;

// The sending end.
mod catch_up;
mod early_wake;
mod sender;

// The receiving end.
mod receiver;

pub use options::{ChannelOptions, EarlyWake, Wait};

/// The layouts of the two kinds of channel, with what to call each.
pub(crate) fn layouts() -> [(crate::Layout, &'static str); 2] {
    [(kind::Kind::OneToOne.layout(), "channel"), (kind::Kind::ManyToMany.layout(), "channel (many)")]
}
#[cfg(feature = "tokio")]
pub use receiver::AsyncReceiver;
pub use receiver::{Message, Receiver};
#[cfg(feature = "tokio")]
pub use sender::AsyncSender;
pub use sender::{Reservation, Sender};
