//! The two roles an end of a channel has: it sends or it receives.

use std::fmt;

/// Which end of a channel: the one that sends or the one that receives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Role {
    /// A [`Sender`](crate::Sender).
    Sender,
    /// A [`Receiver`](crate::Receiver).
    Receiver,
}

impl Role {
    /// The role at the other end of the channel.
    pub(crate) fn other(self) -> Role {
        match self {
            Role::Sender => Role::Receiver,
            Role::Receiver => Role::Sender,
        }
    }

    /// The role as messages name it: `"sender"` or `"receiver"`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Role::Sender => "sender",
            Role::Receiver => "receiver",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
