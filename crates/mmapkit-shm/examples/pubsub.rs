//! One publisher and two subscriber processes on one board: every
//! subscriber receives every message, read in place from the one copy in
//! shared memory. One subscriber keeps up (backpressure: the publisher waits
//! for it); the other is slow and lose-oldest, and reports how many
//! messages it lost instead of holding the publisher back.
//!
//! Run: `cargo run -p mmapkit-shm --example pubsub`

use std::error::Error;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use mmapkit_shm::{Overflow, PubSubOptions, Publisher, Subscriber, SubscriberError};

const MESSAGES: u64 = 20_000;

fn options() -> PubSubOptions {
    let mut options = PubSubOptions::new();
    options.capacity(64).max_message(64).subscribers(2);
    options
}

/// A subscriber process: receives until the publisher is gone, checks each
/// message's contents, and prints what it saw.
fn subscribe(name: &str, policy: &str) -> Result<(), Box<dyn Error>> {
    let mut options = options();
    let slow = policy == "lose-oldest";
    if slow {
        options.overflow(Overflow::LoseOldest);
    }
    // SAFETY: every process on this board is this example, following the protocol.
    let mut subscriber = unsafe { Subscriber::open_named(name, &options)? };
    println!("ready");
    let (mut received, mut lost, mut sum) = (0u64, 0u64, 0u64);
    loop {
        match subscriber.recv_timeout(Some(Duration::from_secs(30))) {
            Ok(sample) => {
                let seq = u64::from_le_bytes(sample[..8].try_into()?);
                if seq != sample.seq() {
                    return Err(format!("message {} says it is {seq}", sample.seq()).into());
                }
                sum = sum.wrapping_add(seq);
                received += 1;
                if slow && received % 100 == 0 {
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
            Err(SubscriberError::Lagged { missed }) => lost += missed,
            Err(SubscriberError::PublishersGone { .. }) => break,
            Err(other) => return Err(other.into()),
        }
    }
    println!("{policy} subscriber (pid {}): {received} received, {lost} lost, sum {sum}", std::process::id());
    if !slow && (received != MESSAGES || lost != 0) {
        return Err("the backpressure subscriber missed messages".into());
    }
    if received + lost != MESSAGES {
        return Err(format!("{received} received and {lost} lost of {MESSAGES}").into());
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().collect();
    if let [_, role, name, policy] = &args[..]
        && role == "subscriber"
    {
        return subscribe(name, policy);
    }

    let name = format!("mmapkit-example-pubsub-{}", std::process::id());
    // SAFETY: as above.
    let mut publisher = unsafe { Publisher::create_named(&name, &options())? };
    let mut children = Vec::new();
    for policy in ["backpressure", "lose-oldest"] {
        let mut child = Command::new(std::env::current_exe()?)
            .args(["subscriber", &name, policy])
            .stdout(Stdio::piped())
            .spawn()?;
        let mut out = BufReader::new(child.stdout.take().ok_or("no pipe")?);
        let mut line = String::new();
        out.read_line(&mut line)?;
        if !line.contains("ready") {
            return Err(format!("the {policy} subscriber did not start: {line:?}").into());
        }
        children.push((child, out));
    }
    for seq in 0..MESSAGES {
        // Written in place, in the slot every subscriber reads.
        let mut loan = publisher.loan_timeout(64, Some(Duration::from_secs(30)))?;
        loan[..8].copy_from_slice(&seq.to_le_bytes());
        loan[8..].fill(seq as u8);
        loan.commit();
    }
    println!("publisher (pid {}): {MESSAGES} published", std::process::id());
    drop(publisher);
    for (mut child, mut out) in children {
        let mut report = String::new();
        std::io::Read::read_to_string(&mut out, &mut report)?;
        print!("{report}");
        let status = child.wait()?;
        if !status.success() {
            return Err(format!("a subscriber failed: {status}").into());
        }
    }
    Ok(())
}
