//! Request-response: each call gets its own response, zero-copy both ways,
//! timeouts, refusals and limits, calls given up on, a killed client and a
//! killed server (in child processes), and a peer scribbling on the region.

mod common;

use common::{Started, name_from_env, spawn_until, unique};

use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

use mmapkit_shm::{Client, ClientError, Party, Server, ServerError, ServiceOptions, ShmError, Wait};
use proptest::prelude::*;

const LONG: Option<Duration> = Some(Duration::from_secs(30));

fn options(clients: u64) -> ServiceOptions {
    let mut options = ServiceOptions::new();
    options.clients(clients).max_request(128).max_response(256).peer_check(Duration::from_millis(10));
    options
}

fn client(name: &str, options: &ServiceOptions) -> Client {
    // SAFETY: every end of these services is this crate's, following its protocol.
    unsafe { Client::open_named(name, options) }.unwrap()
}

/// The response the test servers give: the request reversed, then its length.
fn answer(request: &[u8]) -> Vec<u8> {
    let mut out: Vec<u8> = request.iter().rev().copied().collect();
    out.extend_from_slice(&(request.len() as u32).to_le_bytes());
    out
}

/// Serves `calls` requests, writing each response in place.
fn serve(server: &mut Server, calls: usize) {
    for _ in 0..calls {
        let mut request = server.recv_timeout(LONG).unwrap();
        let len = request.len() + 4;
        let mut response = request.loan_response(len).unwrap();
        let reply = answer(response.request());
        response.copy_from_slice(&reply);
        response.commit().unwrap();
    }
}

#[test]
fn many_clients_each_get_their_own_responses_in_place() {
    for wait in [Wait::Spin, Wait::Block, Wait::SpinThenBlock(200)] {
        let name = unique("service");
        let mut opts = options(4);
        opts.wait(wait);
        // SAFETY: as above.
        let mut server = unsafe { Server::create_named(&name, &opts) }.unwrap();
        const CALLS: usize = 500;
        let clients: Vec<_> = (0..4u8)
            .map(|c| {
                let (name, opts) = (name.clone(), opts.clone());
                std::thread::spawn(move || {
                    let mut me = client(&name, &opts);
                    for i in 0..CALLS {
                        let request: Vec<u8> = (0..(i % 100) as u8).map(|b| b ^ c).collect();
                        if i % 2 == 0 {
                            let mut loan = me.loan(request.len()).unwrap();
                            loan.copy_from_slice(&request);
                            let response = loan.call(LONG).unwrap();
                            assert_eq!(&*response, &answer(&request)[..], "client {c} call {i}");
                        } else {
                            let response = me.call_timeout(&request, LONG).unwrap();
                            assert_eq!(&*response, &answer(&request)[..], "client {c} call {i}");
                        }
                    }
                })
            })
            .collect();
        serve(&mut server, 4 * CALLS);
        for c in clients {
            c.join().unwrap();
        }
    }
}

#[test]
fn every_place_works_whatever_the_request_and_response_sizes() {
    for (request, response) in [(64, 64), (64, 128), (192, 64), (1000, 3000)] {
        let name = unique("service-sizes");
        let mut opts = options(3);
        opts.max_request(request).max_response(response);
        // SAFETY: as above.
        let mut server = unsafe { Server::create_named(&name, &opts) }.unwrap();
        let mut clients: Vec<Client> = (0..3).map(|_| client(&name, &opts)).collect();
        for (i, me) in clients.iter_mut().enumerate() {
            let len = me.max_request().min(response - 4);
            let mut loan = me.loan(len).unwrap();
            loan.fill(i as u8);
            loan.send().unwrap();
        }
        serve(&mut server, 3);
        for (i, me) in clients.iter_mut().enumerate() {
            let len = me.max_request().min(response - 4);
            assert_eq!(&*me.response_timeout(LONG).unwrap(), &answer(&vec![i as u8; len])[..], "{request}/{response}");
        }
    }
}

#[test]
fn a_request_dropped_unanswered_is_no_response_and_the_next_call_goes_through() {
    let name = unique("service-drop");
    let opts = options(1);
    // SAFETY: as above.
    let mut server = unsafe { Server::create_named(&name, &opts) }.unwrap();
    let mut me = client(&name, &opts);
    me.loan(3).unwrap().send().unwrap();
    let request = server.recv_timeout(LONG).unwrap();
    assert_eq!(request.client(), me.place());
    assert_eq!(request.client_pid(), std::process::id());
    drop(request);
    let err = me.response_timeout(LONG).unwrap_err();
    assert!(matches!(err, ClientError::NoResponse { .. }), "{err}");
    let err = me.response_timeout(LONG).unwrap_err();
    assert!(matches!(err, ClientError::NothingSent), "{err}");
    let caller = std::thread::spawn(move || me.call_timeout(b"again", LONG).map(|r| r.to_vec()).unwrap());
    serve(&mut server, 1);
    assert_eq!(caller.join().unwrap(), answer(b"again"));
}

#[test]
fn waits_end_at_their_timeouts_and_limits_are_errors() {
    let name = unique("service-limits");
    let opts = options(2);
    // SAFETY: as above.
    let mut me = unsafe { Client::create_named(&name, &opts) }.unwrap();
    // No server yet: the call waits until its timeout.
    let err = me.call_timeout(b"hello", Some(Duration::from_millis(30))).unwrap_err();
    assert!(matches!(err, ClientError::Timeout(_)), "{err}");
    let err = me.call_timeout(&[0; 129], LONG).unwrap_err();
    assert!(matches!(err, ClientError::MessageTooLarge { len: 129, max: 128 }), "{err}");
    // SAFETY: as above.
    let mut server = unsafe { Server::open_named(&name, &opts) }.unwrap();
    // SAFETY: as above.
    let err = unsafe { Server::open_named(&name, &opts) }.unwrap_err();
    assert!(matches!(err, ShmError::NoPlaceFree { party: Party::Server, max: 1, .. }), "{err}");
    let _second = client(&name, &opts);
    // SAFETY: as above.
    let err = unsafe { Client::open_named(&name, &opts) }.unwrap_err();
    assert!(matches!(err, ShmError::NoPlaceFree { party: Party::Client, max: 2, .. }), "{err}");
    // The request the timed-out call left is still there for the server.
    let mut request = server.try_recv().unwrap();
    assert_eq!(&*request, b"hello");
    let err = request.loan_response(257).unwrap_err();
    assert!(matches!(err, ServerError::MessageTooLarge { len: 257, max: 256 }), "{err}");
    request.respond(b"late").unwrap();
    assert!(matches!(server.try_recv(), Err(ServerError::Empty)));
    let err = server.recv_timeout(Some(Duration::from_millis(20))).unwrap_err();
    assert!(matches!(err, ServerError::Timeout(_)), "{err}");
    // The late response to the call given up on is still the pending call's to read.
    assert_eq!(&*me.response_timeout(LONG).unwrap(), b"late");
}

#[test]
fn a_call_given_up_on_never_answers_the_next_one() {
    const ROUNDS: u8 = 100;
    let name = unique("service-stale");
    let opts = options(1);
    // SAFETY: as above.
    let mut server = unsafe { Server::create_named(&name, &opts) }.unwrap();
    let mut me = client(&name, &opts);
    let (taken_tx, taken_rx) = std::sync::mpsc::channel();
    let (gave_up_tx, gave_up_rx) = std::sync::mpsc::channel::<()>();
    let serving = std::thread::spawn(move || {
        for _ in 0..ROUNDS {
            let first = server.recv_timeout(LONG).unwrap();
            taken_tx.send(()).unwrap();
            gave_up_rx.recv().unwrap();
            first.respond(b"stale").unwrap();
            serve(&mut server, 1);
        }
    });
    for round in 0..ROUNDS {
        me.loan(1).unwrap().send().unwrap();
        taken_rx.recv().unwrap();
        let err = me.response_timeout(Some(Duration::from_micros(100))).unwrap_err();
        assert!(matches!(err, ClientError::Timeout(_)), "{err}");
        gave_up_tx.send(()).unwrap();
        // The next call first waits out the one given up on, then gets its own answer.
        let fresh = me.call_timeout(&[round], LONG).unwrap();
        assert_eq!(&*fresh, &answer(&[round])[..], "round {round}");
    }
    serving.join().unwrap();
}

#[test]
fn a_killed_client_is_reported_to_the_server_that_responds() {
    let name = unique("service-killed-client");
    let opts = options(2);
    // SAFETY: as above.
    let mut server = unsafe { Server::create_named(&name, &opts) }.unwrap();
    let Started { child: mut caller, stdout: _out } = spawn_until("child_call_and_hang", &name, "sent");
    let request = server.recv_timeout(LONG).unwrap();
    assert_eq!(&*request, b"are you there");
    caller.kill().unwrap();
    caller.wait().unwrap();
    let err = request.respond(b"yes").unwrap_err();
    assert!(matches!(err, ServerError::ClientGone { place: 0, .. }), "{err}");
    assert!(err.to_string().contains(&name), "{err}");
    // Its place is free for a new client, which is not handed the old response.
    let mut next = client(&name, &opts);
    assert_eq!(next.place(), 0);
    let caller = std::thread::spawn(move || next.call_timeout(b"new", LONG).map(|r| r.to_vec()).unwrap());
    serve(&mut server, 1);
    assert_eq!(caller.join().unwrap(), answer(b"new"));
}

#[test]
#[ignore = "child process of a_killed_client_is_reported_to_the_server_that_responds"]
fn child_call_and_hang() {
    let mut me = client(&name_from_env(), &options(2));
    let mut loan = me.loan(13).unwrap();
    loan.copy_from_slice(b"are you there");
    loan.send().unwrap();
    println!("sent");
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn a_killed_server_is_reported_to_a_waiting_client_and_a_new_server_takes_over() {
    for wait in [Wait::Spin, Wait::Block] {
        let name = unique("service-killed-server");
        let mut opts = options(2);
        opts.wait(wait);
        // SAFETY: as above.
        let mut me = unsafe { Client::create_named(&name, &opts) }.unwrap();
        let Started { child: mut server, mut stdout } = spawn_until("child_serve_and_hang", &name, "serving");
        let mut loan = me.loan(4).unwrap();
        loan.copy_from_slice(b"ping");
        loan.send().unwrap();
        let mut line = String::new();
        while !line.contains("taken") {
            line.clear();
            assert!(std::io::BufRead::read_line(&mut stdout, &mut line).unwrap() > 0, "the server exited");
        }
        server.kill().unwrap();
        server.wait().unwrap();
        let start = Instant::now();
        let err = me.response_timeout(LONG).unwrap_err();
        assert!(matches!(err, ClientError::ServerGone { .. }), "{wait:?}: {err}");
        assert!(start.elapsed() < Duration::from_secs(10), "noticed after {:?}", start.elapsed());
        // SAFETY: as above.
        let mut next = unsafe { Server::open_named(&name, &opts) }.unwrap();
        let caller = std::thread::spawn(move || me.call_timeout(b"again", LONG).map(|r| r.to_vec()).unwrap());
        serve(&mut next, 1);
        assert_eq!(caller.join().unwrap(), answer(b"again"));
    }
}

#[test]
#[ignore = "child process of a_killed_server_is_reported_to_a_waiting_client_and_a_new_server_takes_over"]
fn child_serve_and_hang() {
    // SAFETY: as above.
    let mut server = unsafe { Server::open_named(&name_from_env(), &options(2)) }.unwrap();
    println!("serving");
    let mut request = server.recv_timeout(LONG).unwrap();
    assert_eq!(&*request, b"ping");
    let mut response = request.loan_response(3).unwrap();
    response.copy_from_slice(b"hal");
    println!("taken");
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn a_new_server_refuses_what_a_dead_one_had_taken() {
    let name = unique("service-new-server");
    let opts = options(1);
    // SAFETY: as above.
    let mut me = unsafe { Client::create_named(&name, &opts) }.unwrap();
    // SAFETY: as above.
    let mut first = unsafe { Server::open_named(&name, &opts) }.unwrap();
    me.loan(1).unwrap().send().unwrap();
    let request = first.try_recv().unwrap();
    // A server that leaves holding a request (as a dead one would) ...
    std::mem::forget(request);
    drop(first);
    // ... leaves it to the next server to refuse.
    // SAFETY: as above.
    let _second = unsafe { Server::open_named(&name, &opts) }.unwrap();
    let err = me.response_timeout(LONG).unwrap_err();
    assert!(matches!(err, ClientError::NoResponse { .. }), "{err}");
}

fn any_client_result<T>(result: Result<T, ClientError>) -> Result<(), TestCaseError> {
    match result {
        Ok(_)
        | Err(
            ClientError::Timeout(_)
            | ClientError::Corrupt { .. }
            | ClientError::NoResponse { .. }
            | ClientError::NothingSent,
        ) => {}
        Err(other) => prop_assert!(false, "unexpected error {other}"),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(100))]
    #[test]
    fn a_peer_scribbling_on_the_service_gets_errors_never_a_crash_or_an_endless_wait(
        scribbles in proptest::collection::vec(
            // The header and both places (128 + 128 + 256 bytes each).
            (0u64..(1024 + 2 * 512), proptest::collection::vec(any::<u8>(), 1..24)),
            1..8,
        ),
        sent in any::<bool>(),
    ) {
        let name = unique("service-hostile");
        let opts = options(2);
        // SAFETY: as above.
        let mut server = unsafe { Server::create_named(&name, &opts) }.unwrap();
        let mut me = client(&name, &opts);
        if sent {
            me.loan(5).unwrap().send().unwrap();
        }
        let file = std::fs::OpenOptions::new().write(true).open(format!("/dev/shm/{name}")).unwrap();
        for (offset, bytes) in &scribbles {
            file.write_all_at(bytes, 128 + offset).unwrap();
        }
        let short = Some(Duration::from_millis(2));
        for _ in 0..5 {
            match server.recv_timeout(short) {
                Ok(request) => {
                    prop_assert!(request.len() <= 128);
                    match request.respond(b"r") {
                        Ok(()) | Err(ServerError::ClientGone { .. }) => {}
                        Err(other) => prop_assert!(false, "unexpected error {other}"),
                    }
                }
                Err(ServerError::Timeout(_) | ServerError::Corrupt { .. }) => {}
                Err(other) => prop_assert!(false, "unexpected error {other}"),
            }
            match me.response_timeout(short) {
                Ok(response) => prop_assert!(response.len() <= 256),
                other => any_client_result(other)?,
            }
            any_client_result(me.call_timeout(b"call", short).map(|r| r.len()))?;
        }
        // New ends check what they read.
        // SAFETY: as above.
        match unsafe { Client::open_named(&name, &opts) } {
            Ok(mut late) => any_client_result(late.call_timeout(b"late", short).map(|r| r.len()))?,
            Err(ShmError::Corrupt { .. } | ShmError::NoPlaceFree { .. }) => {}
            Err(other) => prop_assert!(false, "unexpected error {other}"),
        }
    }
}
