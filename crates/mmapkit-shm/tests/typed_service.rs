//! Typed request-response: requests of one type and responses of another,
//! written and read in place; both types checked when an end attaches, the
//! error naming which of the two differs and both sides' types.

mod common;

use common::unique;

use std::time::Duration;

use mmapkit_shm::{ClientError, ServerError, ServiceOptions, ShmError, typed};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

#[derive(IntoBytes, FromBytes, KnownLayout, Immutable, Debug, PartialEq, Clone, Copy)]
#[repr(C)]
struct Order {
    id: u64,
    quantity: u32,
    side: [u8; 4],
}

#[derive(IntoBytes, FromBytes, KnownLayout, Immutable, Debug, PartialEq, Clone, Copy)]
#[repr(C)]
struct Fill {
    id: u64,
    filled: u64,
    price: f64,
}

#[derive(IntoBytes, FromBytes, KnownLayout, Immutable, Debug, PartialEq, Clone, Copy)]
#[repr(C, align(128))]
struct TooAligned {
    bytes: [u8; 128],
}

const TIMEOUT: Option<Duration> = Some(Duration::from_secs(30));

fn order(id: u64) -> Order {
    Order { id, quantity: (id * 3 + 1) as u32, side: if id.is_multiple_of(2) { *b"BUY " } else { *b"SELL" } }
}

/// What the server answers to an order.
fn fill_for(order: &Order) -> Fill {
    Fill { id: order.id, filled: u64::from(order.quantity) * 2, price: order.id as f64 * 0.5 }
}

#[test]
fn typed_calls_are_written_and_answered_in_place() {
    let name = unique("typed-service");
    let options = ServiceOptions::new();
    // SAFETY: every end of this service is this test's, following the crate's protocol.
    let mut server = unsafe { typed::Server::<Order, Fill>::create_named(&name, &options) }.unwrap();
    const CALLS: u64 = 200;
    let calling = std::thread::spawn({
        let name = name.clone();
        move || {
            let mut client =
                // SAFETY: as above.
                unsafe { typed::Client::<Order, Fill>::open_named(&name, &ServiceOptions::new()) }.unwrap();
            for id in 0..CALLS {
                let response = if id.is_multiple_of(2) {
                    let mut loan = client.loan_timeout(TIMEOUT)?;
                    *loan = order(id);
                    loan.quantity += 1;
                    loan.call(TIMEOUT)?
                } else {
                    let mut o = order(id);
                    o.quantity += 1;
                    client.call_timeout(&o, TIMEOUT)?
                };
                let mut expected = order(id);
                expected.quantity += 1;
                assert_eq!(*response, fill_for(&expected), "call {id}");
            }
            Ok::<_, ClientError>(())
        }
    });
    for id in 0..CALLS {
        let mut request = server.recv_timeout(TIMEOUT).unwrap();
        let fill = fill_for(&request);
        assert_eq!(request.id, id);
        if id.is_multiple_of(3) {
            request.respond(&fill).unwrap();
        } else {
            let mut loan = request.loan_response().unwrap();
            *loan = fill;
            loan.commit().unwrap();
        }
    }
    calling.join().unwrap().unwrap();
    // The rooms are the types' sizes (rounded up to 64), not the options' 1 KiB.
    assert_eq!(server.as_bytes().max_response(), 64);
}

#[test]
fn ends_of_other_types_are_refused_naming_which_side_and_both_types() {
    let name = unique("typed-service-mismatch");
    let options = ServiceOptions::new();
    // SAFETY: every end of these services is this test's, following the crate's protocol.
    let _server = unsafe { typed::Server::<Order, Fill>::create_named(&name, &options) }.unwrap();

    // SAFETY: as above.
    let err = unsafe { typed::Client::<Order, Order>::open_named(&name, &options) }.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, ShmError::WrongMessageType { .. }), "{text}");
    assert!(text.contains(&format!("responses of {}", std::any::type_name::<Fill>())), "{text}");
    assert!(text.contains(&format!("responses of {}", std::any::type_name::<Order>())), "{text}");
    assert!(text.contains(&name), "{text}");

    // SAFETY: as above.
    let err = unsafe { typed::Client::<Fill, Fill>::open_named(&name, &options) }.unwrap_err();
    let text = err.to_string();
    assert!(text.contains(&format!("requests of {}", std::any::type_name::<Order>())), "{text}");
    assert!(text.contains(&format!("requests of {}", std::any::type_name::<Fill>())), "{text}");

    // A byte client sees the bytes.
    // SAFETY: as above.
    let _bytes = unsafe { mmapkit_shm::Client::open_named(&name, &options) }.unwrap();

    // A typed end on a byte service is refused too.
    let plain = unique("typed-service-on-bytes");
    // SAFETY: as above.
    let _raw = unsafe { mmapkit_shm::Server::create_named(&plain, &options) }.unwrap();
    // SAFETY: as above.
    let err = unsafe { typed::Client::<Order, Fill>::open_named(&plain, &options) }.unwrap_err();
    assert!(err.to_string().contains("requests of raw bytes"), "{err}");
}

#[test]
fn a_request_of_another_length_is_dropped_and_reported() {
    let name = unique("typed-service-length");
    let options = ServiceOptions::new();
    // SAFETY: every end of this service is this test's, following the crate's protocol.
    let mut server = unsafe { typed::Server::<Order, Fill>::create_named(&name, &options) }.unwrap();
    // SAFETY: as above.
    let mut client = unsafe { mmapkit_shm::Client::open_named(&name, &options) }.unwrap();
    let mut loan = client.loan(5).unwrap();
    loan.copy_from_slice(b"short");
    loan.send().unwrap();
    let err = server.recv_timeout(TIMEOUT).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, ServerError::Corrupt { .. }), "{text}");
    assert!(text.contains("5 bytes") && text.contains(std::any::type_name::<Order>()), "{text}");
    // The call ends unanswered rather than waiting.
    let err = client.response_timeout(TIMEOUT).unwrap_err();
    assert!(matches!(err, ClientError::NoResponse { .. }), "{err}");
}

#[test]
fn a_type_the_rooms_cannot_align_is_refused() {
    let name = unique("typed-service-align");
    // SAFETY: no other end opens it.
    let err = unsafe { typed::Server::<TooAligned, Fill>::create_named(&name, &ServiceOptions::new()) }.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, ShmError::TypeDoesNotFit { .. }), "{text}");
    assert!(text.contains("TooAligned") && text.contains("alignment 128"), "{text}");
}
