//! Process A and process B share one region, with the synchronization the
//! kernel does not give: the two real processes update it under a robust
//! cross-process mutex.
//!
//! Run: `cargo run -p mmapkit-shm --example process_a_and_b`

use std::error::Error;

use mmapkit_shm::{RegionOptions, ShmMutex};
use zerocopy::{FromBytes, KnownLayout};

/// What the two processes share. Any bytes are a valid `Tally` (FromBytes).
#[derive(FromBytes, KnownLayout)]
#[repr(C)]
struct Tally {
    count: u64,
    last_writer: u32,
    _pad: u32,
}

const ROUNDS: u64 = 10_000;

fn add(mutex: &ShmMutex<Tally>) -> Result<(), Box<dyn Error>> {
    for _ in 0..ROUNDS {
        let mut tally = mutex.lock()?;
        if tally.previous_owner_died() {
            tally.make_consistent()?; // a count is consistent at any instant
        }
        tally.count += 1;
        tally.last_writer = std::process::id();
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().collect();
    if let [_, role, name] = &args[..]
        && role == "process-b"
    {
        // SAFETY: both processes reach the value only through the lock.
        let mutex = unsafe { ShmMutex::<Tally>::open_named(name, "Tally v1", &RegionOptions::new())? };
        return add(&mutex);
    }

    let name = format!("mmapkit-example-{}", std::process::id());
    // SAFETY: as above.
    let mutex = unsafe {
        ShmMutex::create_named(&name, "Tally v1", &RegionOptions::new(), Tally { count: 0, last_writer: 0, _pad: 0 })?
    };
    let mut b = std::process::Command::new(std::env::current_exe()?).args(["process-b", &name]).spawn()?;
    add(&mutex)?;
    let status = b.wait()?;
    if !status.success() {
        return Err(format!("process B failed: {status}").into());
    }
    let tally = mutex.lock()?;
    println!(
        "A (pid {}) and B (pid {}) each added {ROUNDS}: count = {} (last writer pid {})",
        std::process::id(),
        b.id(),
        tally.count,
        tally.last_writer
    );
    if tally.count != 2 * ROUNDS {
        return Err("an update was lost".into());
    }
    Ok(())
}
