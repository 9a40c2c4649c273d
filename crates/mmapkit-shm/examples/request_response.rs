//! A server process and a client process: each request gets its own
//! response, both written and read in place in shared memory. The client
//! asks for the sum of a list of numbers; the server answers each call.
//!
//! Run: `cargo run -p mmapkit-shm --example request_response`

use std::error::Error;
use std::process::Command;
use std::time::Duration;

use mmapkit_shm::{Client, Server, ServiceOptions};

const CALLS: u64 = 10_000;
const TIMEOUT: Option<Duration> = Some(Duration::from_secs(30));

fn options() -> ServiceOptions {
    let mut options = ServiceOptions::new();
    options.clients(4).max_request(8 * 64).max_response(16);
    options
}

/// The client process: sends `CALLS` requests of numbers and checks each sum.
fn client(name: &str) -> Result<(), Box<dyn Error>> {
    // SAFETY: every process on this service is this example, following the protocol.
    let mut client = unsafe { Client::open_named(name, &options())? };
    for call in 0..CALLS {
        let count = (call % 64 + 1) as usize;
        // The request is written straight into the client's place.
        let mut request = client.loan(8 * count)?;
        for (i, word) in request.chunks_mut(8).enumerate() {
            word.copy_from_slice(&(call + i as u64).to_le_bytes());
        }
        let response = request.call(TIMEOUT)?;
        let sum = u64::from_le_bytes(response[..8].try_into()?);
        let expected: u64 = (0..count as u64).map(|i| call + i).sum();
        if sum != expected {
            return Err(format!("call {call}: the server said {sum}, not {expected}").into());
        }
    }
    println!("client (pid {}): {CALLS} calls answered correctly", std::process::id());
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().collect();
    if let [_, role, name] = &args[..]
        && role == "client"
    {
        return client(name);
    }

    let name = format!("mmapkit-example-service-{}", std::process::id());
    // SAFETY: as above.
    let mut server = unsafe { Server::create_named(&name, &options())? };
    let mut child = Command::new(std::env::current_exe()?).args(["client", &name]).spawn()?;
    for _ in 0..CALLS {
        let mut request = server.recv_timeout(TIMEOUT)?;
        // The response is written straight into the client's place, while
        // the request is read where the client wrote it.
        let mut response = request.loan_response(16)?;
        let sum: u64 = response.request().chunks(8).map(|w| u64::from_le_bytes(w.try_into().unwrap_or_default())).sum();
        response[..8].copy_from_slice(&sum.to_le_bytes());
        let count = response.request().len() as u64 / 8;
        response[8..].copy_from_slice(&count.to_le_bytes());
        response.commit()?;
    }
    println!("server (pid {}): {CALLS} requests served", std::process::id());
    let status = child.wait()?;
    if !status.success() {
        return Err(format!("the client failed: {status}").into());
    }
    Ok(())
}
