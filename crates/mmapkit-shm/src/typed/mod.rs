//! Typed ends: the same boards and channels carrying values of one type `T`
//! instead of bytes, still zero-copy: a publisher or sender loans a `T` in
//! shared memory, fills it in place and sends it; a subscriber or receiver
//! gets a `&T` that points into the slot or ring. A service carries requests
//! of one type and responses of another ([`Client<Req, Resp>`],
//! [`Server<Req, Resp>`]), and records both.
//!
//! `T` is `zerocopy::IntoBytes + FromBytes + KnownLayout + Immutable`: any
//! bytes a peer writes are a valid `T`, a `T` has no padding to leak, and a
//! `&T` has no interior mutability for a peer to race with. The region's
//! header records the message type (its size, alignment,
//! `std::any::type_name` and a fingerprint of the three) when the first end
//! makes it; an end of another type is refused, with an error naming both
//! types ([`ShmError::WrongMessageType`](crate::ShmError::WrongMessageType)).
//! A byte end may still open a typed region, and sees each value's bytes.
//!
//! The name is the compiler's, so two builds of one type with different
//! compilers may differ in it: build every process of a program with one
//! compiler, or keep to byte ends.

mod channel;
mod pubsub;
mod service;

pub use channel::{Received, Receiver, Reserved, Sender};
pub use pubsub::{Publisher, Subscriber, TypedLoan, TypedSample};
pub use service::{Client, Server, TypedRequest, TypedRequestLoan, TypedResponse, TypedResponseLoan};

/// What is wrong with a message whose length is not its type's.
fn wrong_length<T>(len: usize) -> String {
    format!("a message of {len} bytes where a {} of {} bytes was due", std::any::type_name::<T>(), size_of::<T>())
}
