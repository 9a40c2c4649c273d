//! "Process A and Process B": two real processes map one file with
//! MAP_SHARED and see each other's writes. The kernel gives no synchronization,
//! so a header holds an atomic flag that says whose turn it is.
//!
//! Layout of the shared file: bytes 0..4 are the flag (0 = empty, 1 = A wrote
//! its message, 2 = B answered), a message area follows.
//!
//! Run: `cargo run -p mmapkit --example two_processes`

use std::error::Error;
use std::fs::OpenOptions;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const MESSAGE: std::ops::Range<usize> = 64..128;
const REPLY: std::ops::Range<usize> = 128..192;

/// The flag at the start of the map. The map's base is page-aligned, so the
/// first four bytes are a properly aligned `u32`.
fn flag(map: &mut mmapkit::MapMut) -> &AtomicU32 {
    // SAFETY: the pointer is page-aligned (so aligned for AtomicU32), points at 4 mapped bytes that live as long as
    // `map`, and every process touches those bytes only through atomics.
    unsafe { AtomicU32::from_ptr(map.as_mut_ptr().cast::<u32>()) }
}

fn wait_for(flag: &AtomicU32, value: u32) -> Result<(), Box<dyn Error>> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while flag.load(Ordering::Acquire) != value {
        if Instant::now() > deadline {
            return Err(format!("timed out waiting for the flag to become {value}").into());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}

fn map_shared(path: &Path) -> Result<mmapkit::MapMut, Box<dyn Error>> {
    let file = OpenOptions::new().read(true).write(true).open(path)?;
    // SAFETY: the two processes take turns through the flag: each writes the message area only when the flag says
    // it is its turn, and reads the other's bytes only after an Acquire load has seen the other's Release store.
    Ok(unsafe { mmapkit::MapMut::new(&file)? })
}

fn process_b(path: &Path) -> Result<(), Box<dyn Error>> {
    let mut map = map_shared(path)?;
    wait_for(flag(&mut map), 1)?;
    let message = String::from_utf8_lossy(&map[MESSAGE]).trim_end_matches('\0').to_owned();
    println!("B (pid {}) read: {message:?}", std::process::id());
    let reply = format!("B saw {} bytes", message.len());
    map[REPLY][..reply.len()].copy_from_slice(reply.as_bytes());
    flag(&mut map).store(2, Ordering::Release);
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().collect();
    if let [_, role, path] = &args[..]
        && role == "process-b"
    {
        return process_b(Path::new(path));
    }

    // Process A: make the shared file, start B, write, wait for B's answer.
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("shared.bin");
    std::fs::write(&path, vec![0u8; 4096])?;
    let mut map = map_shared(&path)?;
    let mut b = std::process::Command::new(std::env::current_exe()?).arg("process-b").arg(&path).spawn()?;

    let message = b"hello from process A";
    map[MESSAGE][..message.len()].copy_from_slice(message);
    flag(&mut map).store(1, Ordering::Release);
    println!("A (pid {}) wrote: {:?}", std::process::id(), String::from_utf8_lossy(message));

    wait_for(flag(&mut map), 2)?;
    let reply = String::from_utf8_lossy(&map[REPLY]).trim_end_matches('\0').to_owned();
    println!("A read B's reply: {reply:?}");
    let status = b.wait()?;
    if !status.success() {
        return Err(format!("process B failed: {status}").into());
    }
    Ok(())
}
