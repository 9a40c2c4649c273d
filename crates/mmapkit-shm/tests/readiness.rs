//! Readiness descriptors: readable when a message is waiting or the other
//! side is gone, cleared by the loop, and never a lost wake-up across many
//! rounds of clear-then-drain against a racing sender.

mod common;

use common::unique;

use std::os::fd::BorrowedFd;
use std::time::Duration;

use mmapkit_shm::{
    ChannelOptions, PubSubOptions, Publisher, Receiver, RecvError, Sender, Subscriber, SubscriberError, Wait,
};
use mmapkit_sys::notify_fd::wait_readable;

const LONG: Option<Duration> = Some(Duration::from_secs(30));

fn readable_now(fd: BorrowedFd<'_>) -> bool {
    wait_readable(fd, Some(Duration::ZERO)).unwrap()
}

fn board_options() -> PubSubOptions {
    let mut options = PubSubOptions::new();
    options.capacity(64).max_message(64).subscribers(2).peer_check(Duration::from_millis(10)).wait(Wait::Spin);
    options
}

#[test]
fn a_subscribers_descriptor_is_readable_while_a_message_waits_and_when_publishers_are_gone() {
    let name = unique("ready-sub");
    let opts = board_options();
    // SAFETY: every end of these regions is this crate's, following its protocol.
    let mut sub = unsafe { Subscriber::create_named(&name, &opts) }.unwrap();
    // SAFETY: as above.
    let mut publisher = unsafe { Publisher::open_named(&name, &opts) }.unwrap();
    let fd = sub.readiness().unwrap().try_clone_to_owned().unwrap();
    assert!(!readable_now(std::os::fd::AsFd::as_fd(&fd)), "nothing published yet");
    for round in 0..20u8 {
        publisher.try_publish(&[round; 8]).unwrap();
        assert!(wait_readable(std::os::fd::AsFd::as_fd(&fd), LONG).unwrap(), "round {round}");
        sub.clear_readiness().unwrap();
        assert_eq!(&*sub.try_recv().unwrap(), &[round; 8]);
        assert!(matches!(sub.try_recv(), Err(SubscriberError::Empty)));
        assert!(!readable_now(std::os::fd::AsFd::as_fd(&fd)), "round {round}: read and cleared");
    }
    drop(publisher);
    assert!(wait_readable(std::os::fd::AsFd::as_fd(&fd), LONG).unwrap(), "the publishers are gone");
    sub.clear_readiness().unwrap();
    assert!(matches!(sub.try_recv(), Err(SubscriberError::PublishersGone { .. })));
}

#[test]
fn a_receivers_descriptor_is_readable_while_a_message_waits_and_when_the_sender_is_gone() {
    for many in [false, true] {
        let name = unique("ready-rx");
        let mut opts = ChannelOptions::new();
        opts.capacity(4096).many(many).peer_check(Duration::from_millis(10)).wait(Wait::Spin);
        // SAFETY: as above.
        let mut rx = unsafe { Receiver::create_named(&name, &opts) }.unwrap();
        // SAFETY: as above.
        let mut tx = unsafe { Sender::open_named(&name, &opts) }.unwrap();
        let fd = rx.readiness().unwrap().try_clone_to_owned().unwrap();
        assert!(!readable_now(std::os::fd::AsFd::as_fd(&fd)));
        for round in 0..20u8 {
            tx.try_send(&[round; 8]).unwrap();
            assert!(wait_readable(std::os::fd::AsFd::as_fd(&fd), LONG).unwrap(), "round {round} (many: {many})");
            rx.clear_readiness().unwrap();
            assert_eq!(&*rx.try_recv().unwrap(), &[round; 8]);
            assert!(matches!(rx.try_recv(), Err(RecvError::Empty)));
            assert!(!readable_now(std::os::fd::AsFd::as_fd(&fd)), "round {round}: read and cleared");
        }
        drop(tx);
        assert!(wait_readable(std::os::fd::AsFd::as_fd(&fd), LONG).unwrap(), "the sender is gone");
        rx.clear_readiness().unwrap();
        assert!(matches!(rx.try_recv(), Err(RecvError::PeerGone { .. })));
    }
}

#[test]
fn clear_then_drain_never_loses_a_message_to_a_racing_publisher() {
    const TOTAL: u64 = 20_000;
    let name = unique("ready-race");
    let opts = board_options();
    // SAFETY: as above.
    let mut sub = unsafe { Subscriber::create_named(&name, &opts) }.unwrap();
    let writer = {
        let (name, opts) = (name.clone(), opts.clone());
        std::thread::spawn(move || {
            // SAFETY: as above.
            let mut publisher = unsafe { Publisher::open_named(&name, &opts) }.unwrap();
            for seq in 0..TOTAL {
                publisher.publish_timeout(&seq.to_le_bytes(), LONG).unwrap();
                if seq % 7 == 0 {
                    std::thread::yield_now();
                }
            }
            // Stay attached until the reader has everything.
            std::thread::park();
        })
    };
    let fd = sub.readiness().unwrap().try_clone_to_owned().unwrap();
    let mut next = 0u64;
    let mut wake_ups = 0u64;
    while next < TOTAL {
        assert!(wait_readable(std::os::fd::AsFd::as_fd(&fd), LONG).unwrap(), "stuck at {next}: a lost wake-up");
        wake_ups += 1;
        sub.clear_readiness().unwrap();
        loop {
            match sub.try_recv() {
                Ok(sample) => {
                    assert_eq!(u64::from_le_bytes(sample[..8].try_into().unwrap()), next);
                    next += 1;
                }
                Err(SubscriberError::Empty) => break,
                Err(other) => panic!("{other}"),
            }
        }
    }
    assert!(wake_ups > 1);
    writer.thread().unpark();
    writer.join().unwrap();
}

/// The names of this process's threads (Linux keeps the first 15 bytes).
#[cfg(target_os = "linux")]
fn thread_names() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .map(|name| name.trim_end().to_owned())
        .collect()
}

#[cfg(target_os = "linux")]
#[test]
fn readiness_descriptors_take_no_thread_per_end() {
    const ENDS: usize = 12;
    let mut channels = Vec::new();
    let mut boards = Vec::new();
    for _ in 0..ENDS {
        let name = unique("ready-threads");
        let mut opts = ChannelOptions::new();
        opts.capacity(4096).peer_check(Duration::from_millis(10));
        // SAFETY: as above.
        let mut rx = unsafe { Receiver::create_named(&name, &opts) }.unwrap();
        // SAFETY: as above.
        let tx = unsafe { Sender::open_named(&name, &opts) }.unwrap();
        rx.readiness().unwrap();
        channels.push((tx, rx));
        let name = unique("ready-threads-sub");
        let opts = board_options();
        // SAFETY: as above.
        let mut sub = unsafe { Subscriber::create_named(&name, &opts) }.unwrap();
        // SAFETY: as above.
        let publisher = unsafe { Publisher::open_named(&name, &opts) }.unwrap();
        sub.readiness().unwrap();
        boards.push((publisher, sub));
    }
    let names = thread_names();
    let watches = names.iter().filter(|n| n.starts_with("mmapkit-shm-wat")).count();
    assert!(watches <= 1, "one peer watch for the process at most: {names:?}");
    assert!(
        names.iter().all(|n| !n.starts_with("mmapkit-shm-rea")),
        "no thread of its own for any of {} ends: {names:?}",
        2 * ENDS
    );
    // And each descriptor is rung by its own peer only.
    for (i, (tx, _)) in channels.iter_mut().enumerate().filter(|(i, _)| i % 2 == 0) {
        tx.try_send(&[i as u8]).unwrap();
    }
    for (i, (publisher, _)) in boards.iter_mut().enumerate().filter(|(i, _)| i % 3 == 0) {
        publisher.try_publish(&[i as u8]).unwrap();
    }
    for (i, (_, rx)) in channels.iter_mut().enumerate() {
        let fd = rx.readiness().unwrap();
        assert_eq!(readable_now(fd), i % 2 == 0, "receiver {i}");
    }
    for (i, (_, sub)) in boards.iter_mut().enumerate() {
        let fd = sub.readiness().unwrap();
        assert_eq!(readable_now(fd), i % 3 == 0, "subscriber {i}");
    }
}

#[test]
fn a_sender_in_another_process_rings_the_descriptor_and_its_death_rings_it_too() {
    use std::io::Write;
    let name = unique("ready-process");
    let mut opts = ChannelOptions::new();
    opts.capacity(4096).peer_check(Duration::from_millis(20));
    // SAFETY: as above.
    let mut rx = unsafe { Receiver::create_named(&name, &opts) }.unwrap();
    let fd = rx.readiness().unwrap().try_clone_to_owned().unwrap();
    let mut child = common::child_command("sender_process_sends_what_it_reads", &name)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    for round in 0..20u8 {
        assert!(!readable_now(std::os::fd::AsFd::as_fd(&fd)), "round {round}: nothing sent yet");
        writeln!(stdin, "{round}").unwrap();
        stdin.flush().unwrap();
        assert!(wait_readable(std::os::fd::AsFd::as_fd(&fd), LONG).unwrap(), "round {round}: not rung");
        rx.clear_readiness().unwrap();
        assert_eq!(&*rx.try_recv().unwrap(), &[round; 16]);
        assert!(matches!(rx.try_recv(), Err(RecvError::Empty)));
    }
    assert!(!readable_now(std::os::fd::AsFd::as_fd(&fd)));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(wait_readable(std::os::fd::AsFd::as_fd(&fd), LONG).unwrap(), "the sender was killed");
    rx.clear_readiness().unwrap();
    assert!(matches!(rx.try_recv(), Err(RecvError::PeerGone { .. })));
}

/// Child: sends 16 bytes of each number it reads on its standard input.
#[test]
#[ignore = "run by a_sender_in_another_process_rings_the_descriptor_and_its_death_rings_it_too"]
fn sender_process_sends_what_it_reads() {
    use std::io::BufRead;
    let mut opts = ChannelOptions::new();
    opts.capacity(4096).peer_check(Duration::from_millis(20));
    // SAFETY: as above.
    let mut tx = unsafe { Sender::open_named(&common::name_from_env(), &opts) }.unwrap();
    for line in std::io::stdin().lock().lines() {
        let round: u8 = line.unwrap().trim().parse().unwrap();
        tx.try_send(&[round; 16]).unwrap();
    }
    // Stdin closed without a kill: stay until killed.
    std::thread::park();
}

#[test]
fn a_peer_scribbling_on_the_bell_slots_writes_nowhere_but_our_bells_and_the_next_arming_works() {
    use mmapkit_sys::bell_fifo::bell_path;
    use std::os::unix::fs::FileExt;
    // The receivers' eight bell slots, after the 128-byte region header, at ring offset 640.
    const RECEIVER_BELLS_AT: u64 = 128 + 640;
    let name = unique("ready-scribble");
    let mut opts = ChannelOptions::new();
    opts.capacity(4096).peer_check(Duration::from_millis(10));
    // SAFETY: as above; the scribbles below are a hostile peer's, which the ring's checks are for.
    let mut rx = unsafe { Receiver::create_named(&name, &opts) }.unwrap();
    // SAFETY: as above.
    let mut tx = unsafe { Sender::open_named(&name, &opts) }.unwrap();
    let fd = rx.readiness().unwrap().try_clone_to_owned().unwrap();
    // Another end of ours, on another channel, armed and waiting.
    let other_name = unique("ready-scribble-other");
    // SAFETY: as above.
    let mut other = unsafe { Receiver::create_named(&other_name, &opts) }.unwrap();
    // SAFETY: as above.
    let _other_tx = unsafe { Sender::open_named(&other_name, &opts) }.unwrap();
    let other_fd = other.readiness().unwrap().try_clone_to_owned().unwrap();
    // A number whose path holds a plain file: a ringer must not write into it.
    let decoy_id = (u64::from(std::process::id()) << 32) | 0xdec0_1d00;
    std::fs::write(bell_path(decoy_id), b"decoy").unwrap();
    let file = std::fs::OpenOptions::new().write(true).open(format!("/dev/shm/{name}")).unwrap();
    // Numbers that name a plain file, nothing at all, and no bell anyone made, in every slot.
    for (round, value) in [decoy_id, u64::MAX, 1].into_iter().enumerate() {
        for slot in 0..8 {
            file.write_all_at(&value.to_ne_bytes(), RECEIVER_BELLS_AT + 8 * slot).unwrap();
        }
        tx.try_send(&[round as u8]).unwrap();
        // Our bell's number was overwritten: the commit may not ring it, and nothing breaks.
        rx.clear_readiness().unwrap();
        assert_eq!(&*rx.try_recv().unwrap(), &[round as u8]);
        assert!(!readable_now(std::os::fd::AsFd::as_fd(&other_fd)), "round {round}: an unrelated bell rang");
    }
    assert_eq!(std::fs::read(bell_path(decoy_id)).unwrap(), b"decoy", "a plain file was written to");
    std::fs::remove_file(bell_path(decoy_id)).unwrap();
    // After the scribbles, the end's own arming works again: the next commit rings it.
    rx.clear_readiness().unwrap();
    tx.try_send(b"after").unwrap();
    assert!(wait_readable(std::os::fd::AsFd::as_fd(&fd), LONG).unwrap());
    rx.clear_readiness().unwrap();
    assert_eq!(&*rx.try_recv().unwrap(), b"after");
    drop(other);
}

#[test]
fn receivers_past_the_eight_bell_slots_of_a_many_to_many_channel_are_still_woken() {
    let name = unique("ready-overflow");
    let mut opts = ChannelOptions::new();
    opts.capacity(4096).many(true).peer_check(Duration::from_millis(10));
    // The creator holds the name; ten more receivers wait on their descriptors.
    // SAFETY: as above.
    let first = unsafe { Receiver::create_named(&name, &opts) }.unwrap();
    let open = || {
        // SAFETY: as above.
        unsafe { Receiver::open_named(&name, &opts) }.unwrap()
    };
    let mut receivers: Vec<Receiver> = (0..10).map(|_| open()).collect();
    // SAFETY: as above.
    let mut tx = unsafe { Sender::open_named(&name, &opts) }.unwrap();
    let fds: Vec<_> = receivers.iter_mut().map(|rx| rx.readiness().unwrap().try_clone_to_owned().unwrap()).collect();
    tx.try_send(b"one for someone").unwrap();
    for (i, fd) in fds.iter().enumerate() {
        assert!(wait_readable(std::os::fd::AsFd::as_fd(fd), LONG).unwrap(), "receiver {i} of {} not woken", fds.len());
    }
    let got: Vec<bool> = receivers.iter_mut().map(|rx| rx.try_recv().is_ok()).collect();
    assert_eq!(got.iter().filter(|&&g| g).count(), 1, "{got:?}");
    drop(first);
}
