//! The transports `shm bench` measures, as `--transports` names them: parsed
//! once from the command line, and one place that says what each one is.

use serde::Serialize;

/// A way to move payloads between the two processes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Transport {
    /// The shared-memory channel, each end spinning while it waits.
    ShmSpin,
    /// The shared-memory channel, each end sleeping on a futex while it waits.
    ShmBlock,
    /// A Unix stream socket.
    Uds,
    /// A pair of pipes: the peer's stdin and stdout.
    Pipe,
    /// The spinning floor: one counter bounced between the two CPUs.
    Floor,
    /// The blocking floor: one word handed over with a futex wait and wake.
    FloorBlock,
    /// A publish-subscribe board each way (one publisher, one subscriber),
    /// each end spinning while it waits. Measured when asked for only.
    PubsubSpin,
    /// A publish-subscribe board each way, each end sleeping on a futex
    /// while it waits. Measured when asked for only.
    PubsubBlock,
}

impl Transport {
    /// Every transport, in the order the report lists them.
    pub const ALL: [Transport; 8] = [
        Transport::ShmSpin,
        Transport::ShmBlock,
        Transport::Uds,
        Transport::Pipe,
        Transport::Floor,
        Transport::FloorBlock,
        Transport::PubsubSpin,
        Transport::PubsubBlock,
    ];

    /// The order within a block: the transports compared with each other
    /// stand next to each other (the spinning floor and the spinning channel,
    /// which take milliseconds; the blocking floor, the blocking channel and
    /// the socket; each board beside the channel of its way of waiting).
    pub const BLOCK_ORDER: [Transport; 8] = [
        Transport::Floor,
        Transport::ShmSpin,
        Transport::PubsubSpin,
        Transport::FloorBlock,
        Transport::ShmBlock,
        Transport::PubsubBlock,
        Transport::Uds,
        Transport::Pipe,
    ];

    /// The name the command line, the table and the JSON use.
    pub fn name(self) -> &'static str {
        match self {
            Transport::ShmSpin => "shm-spin",
            Transport::ShmBlock => "shm-block",
            Transport::Uds => "uds",
            Transport::Pipe => "pipe",
            Transport::Floor => "floor",
            Transport::FloorBlock => "floor-block",
            Transport::PubsubSpin => "pubsub-spin",
            Transport::PubsubBlock => "pubsub-block",
        }
    }

    /// Whether a run with no `--transports` measures it: every transport
    /// but the boards, which are measured when named.
    pub fn by_default(self) -> bool {
        !self.is_board()
    }

    /// Whether it is a publish-subscribe board (spinning or blocking).
    pub fn is_board(self) -> bool {
        matches!(self, Transport::PubsubSpin | Transport::PubsubBlock)
    }

    /// Whether it is one of the floors, which carry no payload and are
    /// measured at the first payload size only.
    pub fn is_floor(self) -> bool {
        matches!(self, Transport::Floor | Transport::FloorBlock)
    }

    /// Whether it is the shared-memory channel (spinning or blocking).
    pub fn is_channel(self) -> bool {
        matches!(self, Transport::ShmSpin | Transport::ShmBlock)
    }

    /// The bytes each message carries when the run's payload is `payload`:
    /// the payload, or the floor's one word (the counter's 8 bytes, the futex
    /// word's 4).
    pub fn message_bytes(self, payload: usize) -> usize {
        match self {
            Transport::Floor => 8,
            Transport::FloorBlock => 4,
            _ => payload,
        }
    }
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use clap::ValueEnum;

    use super::*;

    #[test]
    fn every_transport_has_one_name_on_the_command_line_and_in_the_report() {
        assert_eq!(Transport::value_variants(), Transport::ALL);
        for transport in Transport::ALL {
            assert_eq!(transport.to_possible_value().unwrap().get_name(), transport.name());
            assert_eq!(serde_json::to_value(transport).unwrap(), transport.name());
            assert!(Transport::BLOCK_ORDER.contains(&transport));
        }
        let default: Vec<_> = Transport::ALL.into_iter().filter(|t| t.by_default()).collect();
        assert!(!default.contains(&Transport::PubsubSpin) && default.contains(&Transport::ShmSpin), "{default:?}");
    }
}
