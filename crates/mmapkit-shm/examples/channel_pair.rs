//! Two processes and a shared-memory channel: B writes messages in place in
//! the ring (zero-copy), A reads them in place.
//!
//! Run: `cargo run -p mmapkit-shm --example channel_pair`

use std::error::Error;
use std::io::Write;

use mmapkit_shm::{ChannelOptions, Receiver, RecvError, Sender};

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().collect();
    if let [_, role, name] = &args[..]
        && role == "process-b"
    {
        // SAFETY: both ends are mmapkit-shm channel ends.
        let mut tx = unsafe { Sender::open_named(name, &ChannelOptions::new())? };
        for i in 1..=5 {
            let text = format!("message {i} from pid {}", std::process::id());
            let mut slot = tx.reserve(text.len())?; // room in the ring itself
            slot.copy_from_slice(text.as_bytes());
            slot.commit();
        }
        return Ok(()); // dropping the sender closes the channel
    }

    let name = format!("mmapkit-example-channel-{}", std::process::id());
    // SAFETY: as above.
    let mut rx = unsafe { Receiver::create_named(&name, &ChannelOptions::new())? };
    let mut b = std::process::Command::new(std::env::current_exe()?).args(["process-b", &name]).spawn()?;
    let mut out = std::io::stdout().lock();
    loop {
        match rx.recv() {
            Ok(message) => writeln!(out, "A read: {}", String::from_utf8_lossy(&message))?,
            Err(RecvError::PeerGone { .. }) => break, // B finished and left
            Err(e) => return Err(e.into()),
        }
    }
    b.wait()?;
    writeln!(out, "B has gone; the channel is closed")?;
    Ok(())
}
