//! What the code both ends share fails with: the outcomes a sender and a
//! receiver have in common, turned into the [`SendError`] or [`RecvError`]
//! of the operation that met them.

use std::io;
use std::time::Duration;

use crate::error::{Op, RecvError, SendError};
use crate::role::Role;

/// A failure of a wait, a look at the ring or the peer, or a side lock.
#[derive(Debug)]
pub(super) enum Failure {
    /// The wait's timeout passed.
    Timeout(Duration),
    /// The other end is gone.
    PeerGone { region: String, peer: Role },
    /// The ring holds values the protocol never writes.
    Corrupt { region: String, what: String },
    /// The side lock is lost.
    NotRecoverable { region: String },
    /// The OS refused.
    Os { op: Op, region: String, error: io::Error },
}

impl Failure {
    pub(super) fn os(op: Op, region: String, error: io::Error) -> Failure {
        Failure::Os { op, region, error }
    }
}

impl From<Failure> for SendError {
    fn from(failure: Failure) -> SendError {
        match failure {
            Failure::Timeout(waited) => SendError::Timeout(waited),
            Failure::PeerGone { region, peer } => SendError::PeerGone { region, peer },
            Failure::Corrupt { region, what } => SendError::Corrupt { region, what },
            Failure::NotRecoverable { region } => SendError::NotRecoverable { region },
            Failure::Os { op, region, error } => SendError::Os { op, region, error },
        }
    }
}

impl From<Failure> for RecvError {
    fn from(failure: Failure) -> RecvError {
        match failure {
            Failure::Timeout(waited) => RecvError::Timeout(waited),
            Failure::PeerGone { region, peer } => RecvError::PeerGone { region, peer },
            Failure::Corrupt { region, what } => RecvError::Corrupt { region, what },
            Failure::NotRecoverable { region } => RecvError::NotRecoverable { region },
            Failure::Os { op, region, error } => RecvError::Os { op, region, error },
        }
    }
}
