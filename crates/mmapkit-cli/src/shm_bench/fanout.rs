//! Publish-subscribe to several subscriber processes: the benchmark process
//! publishes each payload once, every subscriber reads it in full and
//! answers with an 8-byte ack, and a round trip ends when the last ack is
//! in (the latency to the last subscriber, there and back). The one-way run
//! publishes a run of payloads, which every subscriber reads in full, and
//! ends with the last subscriber's ack.
//!
//! Over a board, the payload is in shared memory once however many
//! subscribers read it, and the acks come back on a second board that every
//! subscriber publishes to. Its peer is the same over one Unix socket per
//! subscriber, the payload written to each in turn.

use std::os::unix::net::UnixStream;
use std::time::Instant;

use anyhow::{Context, bail};
use mmapkit_shm::{PubSubOptions, Publisher, Subscriber, Wait};

use super::WARMUP;
use super::link::{Link, PEER_TIMEOUT, StreamLink, board_options, channel_names};
use crate::common::checksum::sum_words;

/// The bytes of a subscriber's ack.
pub const ACK: usize = 8;

/// The publishing side of a fan-out, to every subscriber at once.
pub trait FanOut {
    /// Sends `len` bytes (every one written with `fill`) to every subscriber.
    fn publish(&mut self, len: usize, fill: u8) -> anyhow::Result<()>;
    /// Waits for one ack from every subscriber.
    fn acks(&mut self) -> anyhow::Result<()>;
}

/// A board to `subscribers` subscriber processes and a board back for their
/// acks, every end sleeping on a futex while it waits.
pub struct BoardFan {
    publisher: Publisher,
    acks: Subscriber,
    subscribers: usize,
}

/// The acks' board: room for every subscriber's ack, many times over.
fn ack_options() -> PubSubOptions {
    let mut options = PubSubOptions::new();
    options.capacity(256).max_message(ACK).subscribers(1).wait(Wait::Block);
    options
}

/// The payloads' board: as the one-to-one boards', with a place for every
/// subscriber (each may join after the first payload is out, and asks for
/// what came before it).
fn fan_options(payload: usize, subscribers: usize) -> PubSubOptions {
    let mut options = board_options(payload, false);
    options.subscribers(subscribers as u64);
    options
}

impl BoardFan {
    /// Creates both boards, before the subscriber processes start.
    pub fn create(base: &str, payload: usize, subscribers: usize) -> anyhow::Result<BoardFan> {
        let (out, back) = channel_names(base);
        // SAFETY: the only other processes that open these boards are this program's subscriber processes
        // (`open_subscriber` below), which speak the board protocol.
        let publisher = unsafe { Publisher::create_named(&out, &fan_options(payload, subscribers)) }?;
        // SAFETY: as above.
        let acks = unsafe { Subscriber::create_named(&back, &ack_options()) }?;
        Ok(BoardFan { publisher, acks, subscribers })
    }
}

/// A subscriber process's side: the payloads' board as a subscriber, the
/// acks' board as a publisher.
pub struct BoardSubscriber {
    subscriber: Subscriber,
    publisher: Publisher,
}

impl BoardSubscriber {
    /// Opens both boards, which the benchmark process made before it
    /// started this one.
    pub fn open(base: &str, payload: usize, subscribers: usize) -> anyhow::Result<BoardSubscriber> {
        let (out, back) = channel_names(base);
        // SAFETY: the boards were made by this program's benchmark process (`BoardFan::create`), which speaks
        // the board protocol, as do the other subscriber processes that open them.
        let subscriber = unsafe { Subscriber::open_named(&out, &fan_options(payload, subscribers)) }?;
        // SAFETY: as above.
        let publisher = unsafe { Publisher::open_named(&back, &ack_options()) }?;
        Ok(BoardSubscriber { subscriber, publisher })
    }
}

impl FanOut for BoardFan {
    fn publish(&mut self, len: usize, fill: u8) -> anyhow::Result<()> {
        // Timed: a subscriber that died holding a slot frees it only when a
        // publisher looks, and one that never attached is waited for by nobody.
        let mut loan = self.publisher.loan_timeout(len, Some(PEER_TIMEOUT))?;
        loan.fill(fill);
        std::hint::black_box(&mut *loan);
        loan.commit();
        Ok(())
    }

    fn acks(&mut self) -> anyhow::Result<()> {
        for _ in 0..self.subscribers {
            // Timed: the other subscribers keep the acks' board alive when one dies.
            let ack = self.acks.recv_timeout(Some(PEER_TIMEOUT)).context("a subscriber did not ack")?;
            if ack.len() != ACK {
                bail!("expected a {ACK}-byte ack, got {}", ack.len());
            }
        }
        Ok(())
    }
}

impl Link for BoardSubscriber {
    fn send(&mut self, len: usize, fill: u8) -> anyhow::Result<()> {
        let mut loan = self.publisher.loan_timeout(len, Some(PEER_TIMEOUT))?;
        loan.fill(fill);
        loan.commit();
        Ok(())
    }

    fn recv(&mut self, len: usize) -> anyhow::Result<u64> {
        let sample = self.subscriber.recv_timeout(Some(PEER_TIMEOUT))?;
        if sample.len() != len {
            bail!("expected a {len}-byte message, got {}", sample.len());
        }
        Ok(std::hint::black_box(sum_words(&sample)))
    }
}

/// One Unix socket per subscriber process.
pub struct SocketFan {
    pub streams: Vec<StreamLink<std::io::BufReader<UnixStream>, UnixStream>>,
}

impl FanOut for SocketFan {
    fn publish(&mut self, len: usize, fill: u8) -> anyhow::Result<()> {
        for stream in &mut self.streams {
            stream.send(len, fill)?;
        }
        Ok(())
    }

    fn acks(&mut self) -> anyhow::Result<()> {
        for stream in &mut self.streams {
            stream.recv(ACK)?;
        }
        Ok(())
    }
}

/// Publishes `rounds` times, each time waiting for every ack, then publishes
/// `messages` and waits for the acks once. `rounds` includes the
/// [`WARMUP`] round trips, which are not returned.
pub fn drive_fan(
    fan: &mut dyn FanOut,
    payload: usize,
    rounds: usize,
    messages: usize,
) -> anyhow::Result<(Vec<u64>, f64)> {
    let mut rtts = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let start = Instant::now();
        fan.publish(payload, round as u8)?;
        fan.acks()?;
        rtts.push(start.elapsed().as_nanos() as u64);
    }
    rtts.drain(..WARMUP.min(rtts.len()));
    let start = Instant::now();
    for i in 0..messages {
        fan.publish(payload, i as u8)?;
    }
    fan.acks()?;
    Ok((rtts, start.elapsed().as_secs_f64()))
}

/// A subscriber's half of [`drive_fan`].
pub fn fan_echo(link: &mut dyn Link, payload: usize, rounds: usize, messages: usize) -> anyhow::Result<()> {
    for round in 0..rounds {
        link.recv(payload)?;
        link.send(ACK, round as u8)?;
    }
    for _ in 0..messages {
        link.recv(payload)?;
    }
    link.send(ACK, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A board to two and to four subscriber threads: every round trip
    /// waits for every ack, and every subscriber reads every payload of the
    /// one-way run (each checks every length it receives).
    #[test]
    fn a_board_fan_reaches_every_subscriber() {
        for (payload, subscribers) in [(64, 2), (4096, 4), (1 << 20, 2)] {
            let name = format!("mmapkit-shm-bench-fan-test-{}-{payload}-{subscribers}", std::process::id());
            let mut fan = BoardFan::create(&name, payload, subscribers).unwrap();
            let echoing: Vec<_> = (0..subscribers)
                .map(|_| {
                    let name = name.clone();
                    std::thread::spawn(move || {
                        let mut link = BoardSubscriber::open(&name, payload, subscribers)?;
                        fan_echo(&mut link, payload, WARMUP + 20, 100)
                    })
                })
                .collect();
            let (rtts, seconds) = drive_fan(&mut fan, payload, WARMUP + 20, 100).unwrap();
            for thread in echoing {
                thread.join().unwrap().unwrap();
            }
            assert_eq!(rtts.len(), 20);
            assert!(seconds > 0.0);
        }
    }
}
