//! A service's readiness descriptors: the server's readable while a request
//! waits, the client's while its response waits or once the server is gone;
//! each cleared by the loop.

mod common;

use common::unique;

use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

use mmapkit_shm::{Client, Server, ServerError, ServiceOptions, Wait};
use mmapkit_sys::notify_fd::wait_readable;

const LONG: Option<Duration> = Some(Duration::from_secs(30));

fn readable_now(fd: BorrowedFd<'_>) -> bool {
    wait_readable(fd, Some(Duration::ZERO)).unwrap()
}

fn options(wait: Wait) -> ServiceOptions {
    let mut options = ServiceOptions::new();
    options.clients(2).max_request(64).max_response(64).peer_check(Duration::from_millis(10)).wait(wait);
    options
}

#[test]
fn a_servers_descriptor_is_readable_while_a_request_waits() {
    // A spinning server: asking for the descriptor makes clients ring it anyway.
    let name = unique("ready-server");
    // SAFETY: every end of this service is this test's, following the crate's protocol.
    let mut server = unsafe { Server::create_named(&name, &options(Wait::Spin)) }.unwrap();
    // SAFETY: as above.
    let mut a = unsafe { Client::open_named(&name, &options(Wait::Spin)) }.unwrap();
    // SAFETY: as above.
    let mut b = unsafe { Client::open_named(&name, &options(Wait::Spin)) }.unwrap();
    let fd = server.readiness().unwrap().try_clone_to_owned().unwrap();
    assert!(!readable_now(fd.as_fd()), "no request yet");
    for round in 0..20u8 {
        let client = if round % 2 == 0 { &mut a } else { &mut b };
        let mut loan = client.loan(8).unwrap();
        loan.fill(round);
        loan.send().unwrap();
        assert!(wait_readable(fd.as_fd(), LONG).unwrap(), "round {round}: a request waits");
        server.clear_readiness().unwrap();
        let request = server.try_recv().unwrap();
        assert_eq!(&*request, &[round; 8]);
        request.respond(&[round; 4]).unwrap();
        assert!(matches!(server.try_recv(), Err(ServerError::Empty)));
        assert!(!readable_now(fd.as_fd()), "round {round}: cleared, and nothing waits");
        assert_eq!(&*client.response_timeout(LONG).unwrap(), &[round; 4]);
    }
}

#[test]
fn a_clients_descriptor_is_readable_when_its_response_waits_and_when_the_server_is_gone() {
    let name = unique("ready-client");
    // SAFETY: every end of this service is this test's, following the crate's protocol.
    let mut server = unsafe { Server::create_named(&name, &options(Wait::Block)) }.unwrap();
    // SAFETY: as above.
    let mut client = unsafe { Client::open_named(&name, &options(Wait::Block)) }.unwrap();
    let fd = client.readiness().unwrap().try_clone_to_owned().unwrap();
    assert!(!readable_now(fd.as_fd()), "nothing sent");
    for round in 0..20u8 {
        client.loan(8).unwrap().send().unwrap();
        assert!(!readable_now(fd.as_fd()), "round {round}: the request is not answered yet");
        let request = server.try_recv().unwrap();
        request.respond(&[round; 16]).unwrap();
        assert!(wait_readable(fd.as_fd(), LONG).unwrap(), "round {round}: the response waits");
        client.clear_readiness().unwrap();
        assert_eq!(&*client.response_timeout(Some(Duration::ZERO)).unwrap(), &[round; 16]);
        assert!(!readable_now(fd.as_fd()), "round {round}: read and cleared");
    }
    // A request the server drops unanswered signals too.
    client.loan(8).unwrap().send().unwrap();
    drop(server.try_recv().unwrap());
    assert!(wait_readable(fd.as_fd(), LONG).unwrap(), "the refusal waits");
    client.clear_readiness().unwrap();
    assert!(client.response_timeout(Some(Duration::ZERO)).is_err());
    // The server leaves: the descriptor says so.
    drop(server);
    assert!(wait_readable(fd.as_fd(), LONG).unwrap(), "the server is gone");
}

/// Two client threads call as fast as they can while the server serves only
/// from its descriptor (clear, then take until empty): a lost wake-up would
/// leave a call unanswered, and its client's 30 s wait would fail.
#[test]
fn a_server_serving_from_its_descriptor_answers_every_racing_call() {
    const CALLS: u32 = 2_000;
    let name = unique("ready-server-race");
    // SAFETY: every end of this service is this test's, following the crate's protocol.
    let mut server = unsafe { Server::create_named(&name, &options(Wait::Block)) }.unwrap();
    let fd = server.readiness().unwrap().try_clone_to_owned().unwrap();
    let callers: Vec<_> = (0..2u32)
        .map(|k| {
            let name = name.clone();
            std::thread::spawn(move || {
                // SAFETY: as above.
                let mut client = unsafe { Client::open_named(&name, &options(Wait::Block)) }.unwrap();
                for call in 0..CALLS {
                    let value = (k << 16 | call).to_le_bytes();
                    let response = client.call_timeout(&value, LONG).unwrap();
                    assert_eq!(&*response, &value, "client {k}, call {call}");
                }
            })
        })
        .collect();
    let mut answered = 0;
    while answered < 2 * CALLS {
        assert!(wait_readable(fd.as_fd(), LONG).unwrap(), "{answered} calls answered, then no signal");
        server.clear_readiness().unwrap();
        loop {
            match server.try_recv() {
                Ok(request) => {
                    let echo = request.to_vec();
                    request.respond(&echo).unwrap();
                    answered += 1;
                }
                Err(ServerError::Empty) => break,
                Err(other) => panic!("{other}"),
            }
        }
    }
    for caller in callers {
        caller.join().unwrap();
    }
}
