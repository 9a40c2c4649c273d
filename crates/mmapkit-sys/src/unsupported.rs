//! The error for a feature this operating system does not have.

use std::fmt;
use std::io;

/// A feature this build's operating system does not offer, by name. It
/// travels inside an [`io::Error`] of kind [`io::ErrorKind::Unsupported`]
/// (see [`Unsupported::error`]), and [`Unsupported::of`] finds it again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Unsupported {
    /// What was asked for, as a noun phrase ("huge pages", "`MADV_REMOVE`").
    pub feature: &'static str,
    /// The operating system that lacks it ([`crate::OS`]).
    pub os: &'static str,
}

impl Unsupported {
    /// `feature` on this build's operating system.
    pub fn here(feature: &'static str) -> Unsupported {
        Unsupported { feature, os: crate::OS }
    }

    /// `feature`, unsupported on this OS, as an `io::Error`.
    pub fn error(feature: &'static str) -> io::Error {
        io::Error::new(io::ErrorKind::Unsupported, Unsupported::here(feature))
    }

    /// The `Unsupported` an `io::Error` made by [`error`](Self::error) carries.
    pub fn of(error: &io::Error) -> Option<Unsupported> {
        error.get_ref().and_then(|inner| inner.downcast_ref::<Unsupported>()).copied()
    }
}

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} is not available on {}", self.feature, self.os)
    }
}

impl std::error::Error for Unsupported {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unsupported_feature_names_itself_and_the_os_and_is_found_again() {
        let err = Unsupported::error("huge pages");
        assert_eq!(err.kind(), io::ErrorKind::Unsupported);
        assert_eq!(err.to_string(), format!("huge pages is not available on {}", crate::OS));
        assert_eq!(Unsupported::of(&err), Some(Unsupported { feature: "huge pages", os: crate::OS }));
        assert_eq!(Unsupported::of(&io::Error::from(io::ErrorKind::Unsupported)), None);
    }
}
