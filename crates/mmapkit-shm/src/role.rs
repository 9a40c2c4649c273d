//! The two roles an end of a channel has: it sends or it receives.

use std::fmt;

/// Which end of a channel: the one that sends or the one that receives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// A [`Sender`](crate::Sender).
    Sender,
    /// A [`Receiver`](crate::Receiver).
    Receiver,
}

impl Role {
    /// The role at the other end of the channel.
    pub fn other(self) -> Role {
        match self {
            Role::Sender => Role::Receiver,
            Role::Receiver => Role::Sender,
        }
    }
}

impl fmt::Display for Role {
    /// `sender` or `receiver`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Sender => "sender",
            Role::Receiver => "receiver",
        })
    }
}
