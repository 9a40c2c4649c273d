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
    /// Request-response over the shared-memory service (this process the
    /// client, the peer the server), each end spinning while it waits.
    /// Measured when asked for only; compared with `uds`.
    ServiceSpin,
    /// Request-response over the shared-memory service, each end sleeping
    /// on a futex while it waits. Measured when asked for only; compared
    /// with `uds`.
    ServiceBlock,
    /// The shared-memory channel (two rings, as `shm-block`) between two
    /// current-thread tokio runtimes: each process awaits its receive
    /// through `AsyncReceiver` and writes its send in place. Compared with
    /// `tokio-uds`. Measured when asked for only.
    AsyncShm,
    /// tokio's Unix stream socket between two current-thread tokio
    /// runtimes, `write_all` and `read_exact`: the peer of `async-shm`.
    /// Measured when asked for only.
    TokioUds,
    /// A publish-subscribe board to one subscriber process, acked on a board
    /// back; every end sleeps on a futex while it waits. Measured when asked
    /// for only; compared with `uds-fanout-1`.
    #[value(name = "fanout-1")]
    #[serde(rename = "fanout-1")]
    Fanout1,
    /// A board to two subscriber processes, as `fanout-1`.
    #[value(name = "fanout-2")]
    #[serde(rename = "fanout-2")]
    Fanout2,
    /// A board to four subscriber processes, as `fanout-1`.
    #[value(name = "fanout-4")]
    #[serde(rename = "fanout-4")]
    Fanout4,
    /// One Unix socket to each of one subscriber process: the peer of
    /// `fanout-1`. Measured when asked for only.
    #[value(name = "uds-fanout-1")]
    #[serde(rename = "uds-fanout-1")]
    UdsFanout1,
    /// One Unix socket to each of two subscriber processes.
    #[value(name = "uds-fanout-2")]
    #[serde(rename = "uds-fanout-2")]
    UdsFanout2,
    /// One Unix socket to each of four subscriber processes.
    #[value(name = "uds-fanout-4")]
    #[serde(rename = "uds-fanout-4")]
    UdsFanout4,
}

impl Transport {
    /// Every transport, in the order the report lists them.
    pub const ALL: [Transport; 18] = [
        Transport::ShmSpin,
        Transport::ShmBlock,
        Transport::Uds,
        Transport::Pipe,
        Transport::Floor,
        Transport::FloorBlock,
        Transport::PubsubSpin,
        Transport::PubsubBlock,
        Transport::ServiceSpin,
        Transport::ServiceBlock,
        Transport::AsyncShm,
        Transport::TokioUds,
        Transport::Fanout1,
        Transport::Fanout2,
        Transport::Fanout4,
        Transport::UdsFanout1,
        Transport::UdsFanout2,
        Transport::UdsFanout4,
    ];

    /// The order within a block: the transports compared with each other
    /// stand next to each other (the spinning floor and the spinning channel,
    /// which take milliseconds; the blocking floor, the blocking channel and
    /// the socket; each board beside the channel of its way of waiting; the
    /// services next to the socket; the async channel next to the async
    /// socket; each fan-out next to its sockets).
    pub const BLOCK_ORDER: [Transport; 18] = [
        Transport::Floor,
        Transport::ShmSpin,
        Transport::PubsubSpin,
        Transport::ServiceSpin,
        Transport::FloorBlock,
        Transport::ShmBlock,
        Transport::PubsubBlock,
        Transport::ServiceBlock,
        Transport::Uds,
        Transport::Pipe,
        Transport::AsyncShm,
        Transport::TokioUds,
        Transport::Fanout1,
        Transport::UdsFanout1,
        Transport::Fanout2,
        Transport::UdsFanout2,
        Transport::Fanout4,
        Transport::UdsFanout4,
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
            Transport::ServiceSpin => "service-spin",
            Transport::ServiceBlock => "service-block",
            Transport::AsyncShm => "async-shm",
            Transport::TokioUds => "tokio-uds",
            Transport::Fanout1 => "fanout-1",
            Transport::Fanout2 => "fanout-2",
            Transport::Fanout4 => "fanout-4",
            Transport::UdsFanout1 => "uds-fanout-1",
            Transport::UdsFanout2 => "uds-fanout-2",
            Transport::UdsFanout4 => "uds-fanout-4",
        }
    }

    /// Whether a run with no `--transports` measures it: every transport
    /// but the boards, the services, the async pair and the fan-outs, which
    /// are measured when named. (The async pair would add about 60% to a
    /// default run: 32 s to 52 s on a shared two-CPU machine.)
    pub fn by_default(self) -> bool {
        !self.is_board() && !self.is_service() && !self.is_async() && self.subscribers().is_none()
    }

    /// Whether it runs on a tokio runtime in each process (`async-shm` and
    /// its peer `tokio-uds`).
    pub fn is_async(self) -> bool {
        matches!(self, Transport::AsyncShm | Transport::TokioUds)
    }

    /// Whether it is the request-response service (spinning or blocking).
    pub fn is_service(self) -> bool {
        matches!(self, Transport::ServiceSpin | Transport::ServiceBlock)
    }

    /// How many subscriber processes a fan-out publishes to (none for the
    /// other transports).
    pub fn subscribers(self) -> Option<usize> {
        match self {
            Transport::Fanout1 | Transport::UdsFanout1 => Some(1),
            Transport::Fanout2 | Transport::UdsFanout2 => Some(2),
            Transport::Fanout4 | Transport::UdsFanout4 => Some(4),
            _ => None,
        }
    }

    /// What its round trips and rates are compared with in the report: the
    /// Unix socket for the services (the same request and response over a
    /// socket), tokio's socket for the async channel (the same runtimes and
    /// payloads), the same number of sockets for a board's fan-out.
    pub fn peer(self) -> Option<Transport> {
        match self {
            Transport::ServiceSpin | Transport::ServiceBlock => Some(Transport::Uds),
            Transport::AsyncShm => Some(Transport::TokioUds),
            Transport::Fanout1 => Some(Transport::UdsFanout1),
            Transport::Fanout2 => Some(Transport::UdsFanout2),
            Transport::Fanout4 => Some(Transport::UdsFanout4),
            _ => None,
        }
    }

    /// Whether it has a one-way run: every transport but the floors (which
    /// carry no payload) and the services (where every request has its
    /// response).
    pub fn one_way(self) -> bool {
        !self.is_floor() && !self.is_service()
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

    /// Whether it is the shared-memory channel (spinning, blocking, or
    /// blocking and awaited), whose rings the report gives.
    pub fn is_channel(self) -> bool {
        matches!(self, Transport::ShmSpin | Transport::ShmBlock | Transport::AsyncShm)
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
        assert!(!default.contains(&Transport::ServiceBlock) && !default.contains(&Transport::Fanout4), "{default:?}");
        assert!(!default.contains(&Transport::AsyncShm) && !default.contains(&Transport::TokioUds), "{default:?}");
        for transport in Transport::ALL {
            // A fan-out's peer publishes to as many subscribers.
            if let Some(peer) = transport.peer() {
                assert_eq!(transport.subscribers(), peer.subscribers(), "{transport}");
            }
        }
    }
}
