//! Request-response round trips over mmapkit-shm's service: the benchmark
//! process is the client, which makes the service; the peer process is the
//! server. Each request and each response carries the payload, written and
//! read in full, in place. Its peer is the Unix socket's row, which does the
//! same with a blocking write of the request and a blocking read of the
//! response.

use std::time::Instant;

use anyhow::bail;
use mmapkit_shm::{Client, Server, ServiceOptions, Wait};

use super::WARMUP;
use super::link::PEER_TIMEOUT;
use crate::common::checksum::sum_words;

/// The service's options for a payload: one client place, requests and
/// responses of the payload's size.
pub fn service_options(payload: usize, spin: bool) -> ServiceOptions {
    let mut options = ServiceOptions::new();
    options.clients(1).max_request(payload.max(1)).max_response(payload.max(1));
    options.wait(if spin { Wait::Spin } else { Wait::Block });
    options
}

/// The client's side of `rounds` calls: writes the request in place, sends
/// it, waits for the response and reads it in full. Returns the round trips
/// after the first [`WARMUP`]. Until the server has answered once the waits
/// are timed ([`PEER_TIMEOUT`]): a server that dies before it attaches is
/// never seen to die.
pub fn call_rounds(client: &mut Client, payload: usize, rounds: usize) -> anyhow::Result<Vec<u64>> {
    let mut rtts = Vec::with_capacity(rounds);
    let mut attached = false;
    for round in 0..rounds {
        let timeout = (!attached).then_some(PEER_TIMEOUT);
        let start = Instant::now();
        let mut request = client.loan_timeout(payload, timeout)?;
        request.fill(round as u8);
        std::hint::black_box(&mut *request);
        let response = request.call(timeout)?;
        if response.len() != payload {
            bail!("expected a {payload}-byte response, got {}", response.len());
        }
        std::hint::black_box(sum_words(&response));
        drop(response);
        rtts.push(start.elapsed().as_nanos() as u64);
        attached = true;
    }
    rtts.drain(..WARMUP.min(rtts.len()));
    Ok(rtts)
}

/// The server's side of [`call_rounds`]: takes each request, reads it in
/// full, and writes a response of the same size in place. The client made
/// the service before it started this process, so the first wait is timed
/// only for a client that dies before it calls.
pub fn serve_rounds(server: &mut Server, payload: usize, rounds: usize) -> anyhow::Result<()> {
    for round in 0..rounds {
        let timeout = (round == 0).then_some(PEER_TIMEOUT);
        let mut request = server.recv_timeout(timeout)?;
        if request.len() != payload {
            bail!("expected a {payload}-byte request, got {}", request.len());
        }
        std::hint::black_box(sum_words(&request));
        let mut response = request.loan_response(payload)?;
        response.fill(round as u8);
        std::hint::black_box(&mut *response);
        response.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client and a server on two threads carry every round trip, at a
    /// small and a large payload, spinning and blocking.
    #[test]
    fn a_service_carries_every_round_trip_both_ways() {
        for (payload, spin) in [(64, true), (4096, false), (1 << 20, false)] {
            let name = format!("mmapkit-shm-bench-service-test-{}-{payload}-{spin}", std::process::id());
            let options = service_options(payload, spin);
            // SAFETY: the service is this test's alone; its other end is the thread below, which speaks the
            // service protocol.
            let mut client = unsafe { Client::create_named(&name, &options) }.unwrap();
            let serving = std::thread::spawn({
                let (name, options) = (name.clone(), options.clone());
                move || {
                    // SAFETY: as above: this test's client made it, and speaks the service protocol.
                    let mut server = unsafe { Server::open_named(&name, &options) }?;
                    serve_rounds(&mut server, payload, WARMUP + 20)
                }
            });
            let rtts = call_rounds(&mut client, payload, WARMUP + 20).unwrap();
            serving.join().unwrap().unwrap();
            assert_eq!(rtts.len(), 20);
        }
    }

    #[test]
    fn a_request_of_the_wrong_size_is_refused_with_both_sizes() {
        let name = format!("mmapkit-shm-bench-service-size-test-{}", std::process::id());
        let options = service_options(128, false);
        // SAFETY: the service is this test's alone; its other end is the thread below.
        let mut client = unsafe { Client::create_named(&name, &options) }.unwrap();
        let serving = std::thread::spawn({
            let (name, options) = (name.clone(), options.clone());
            move || {
                // SAFETY: as above.
                let mut server = unsafe { Server::open_named(&name, &options) }.unwrap();
                serve_rounds(&mut server, 128, 1).unwrap_err().to_string()
            }
        });
        // A 64-byte request where the server expects 128: it refuses it.
        let _ = call_rounds(&mut client, 64, 1);
        let err = serving.join().unwrap();
        assert!(err.contains("128") && err.contains("64"), "{err}");
    }
}
