//! Publish-subscribe: one or more publishers, up to a fixed number of
//! subscribers, and every subscriber receives every message, from one copy
//! of it in shared memory however many subscribers there are.
//!
//! The board is a ring of fixed-size slots with one cursor per subscriber
//! (the layout is in `layout.rs`). A publisher takes the publishers' lock
//! (robust: a publisher that dies mid-message leaves the slot to be written
//! again, its message never seen), [`loan`](Publisher::loan)s the next
//! slot, writes the message in place and [`commit`](Loan::commit)s it; each
//! subscriber's [`recv`](Subscriber::recv) lends it out as a [`Sample`]
//! that borrows the slot, and dropping the sample moves that subscriber's
//! cursor on.
//!
//! A subscriber a whole ring behind holds the publishers back
//! ([`Overflow::Backpressure`]) or has its oldest messages overwritten and
//! is told how many ([`Overflow::LoseOldest`], [`SubscriberError::Lagged`]).
//! A subscriber joining late may ask for up to a ring of the messages
//! published before it ([`PubSubOptions::history`]).
//!
//! Every end holds a liveness byte of the region's file (a byte-range lock
//! the kernel drops when its process dies, as for a channel's ends). A
//! publisher that finds a subscriber in its way looks at its byte, and
//! frees the place of a dead one, which then holds nobody back; a
//! subscriber waiting for messages looks at the publishers' bytes and ends
//! with [`SubscriberError::PublishersGone`] once every publisher is gone
//! and every message is read. Waiting ends look every
//! [`PubSubOptions::peer_check`]; a sleeping end's futex wait is timed for
//! its next look.
//!
//! [`SubscriberError::Lagged`]: crate::SubscriberError::Lagged
//! [`SubscriberError::PublishersGone`]: crate::SubscriberError::PublishersGone

// The board's layout and what both ends share.
mod board;
pub(crate) mod layout;
mod options;
pub(crate) mod wait;

// The two ends.
mod publisher;
mod subscriber;

pub use options::{Overflow, PubSubOptions};

/// The layout of a board's region.
pub(crate) fn board_layout() -> crate::Layout {
    board::layout()
}
pub use publisher::{Loan, Publisher};
#[cfg(feature = "tokio")]
pub use subscriber::AsyncSubscriber;
pub use subscriber::{Sample, Subscriber};
