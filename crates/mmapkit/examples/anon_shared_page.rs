//! One page of anonymous shared memory, written
//! straight into mapped memory and read back, with no read/write syscall.
//!
//! Run: `cargo run -p mmapkit --example anon_shared_page`

fn main() -> mmapkit::Result<()> {
    let size = mmapkit::page_size(); // one page
    // SAFETY: this process does not fork, so no other process can write the page.
    let mut region = unsafe { mmapkit::MapOptions::new().len(size).map_anon_shared()? };

    let msg = b"written straight into mapped memory";
    region[..msg.len()].copy_from_slice(msg);

    println!("read back: {:?}", String::from_utf8_lossy(&region[..msg.len()]));
    println!("region length: {} bytes", region.len());
    Ok(()) // dropping `region` unmaps it
}
