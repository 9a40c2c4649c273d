//! Request-response: one server and up to 64 clients, each request getting
//! its own response, zero-copy both ways.
//!
//! Each client has a place of its own in the region (the layout is in
//! `layout.rs`), with room for one request and one response: it writes its
//! request there in place ([`Client::loan`]), rings the server's doorbell,
//! and reads the response there in place ([`Response`]). The server takes a
//! place's request ([`Server::recv`]), reads it in place, and writes the
//! response in place ([`Request::loan_response`]). One call per client is
//! out at a time; a client that wants more at once opens more clients.
//!
//! Every end holds a liveness byte of the region's file. A client waiting
//! for its response looks at the server's every
//! [`ServiceOptions::peer_check`] and ends with
//! [`ClientError::ServerGone`] if it is gone; a server responding to a client
//! that died (or whose place a new client took) gets
//! [`ServerError::ClientGone`]. A request the server drops unanswered, or
//! that a dead server had taken, ends its call with
//! [`ClientError::NoResponse`]. Every wait takes a timeout.
//!
//! [`ClientError::ServerGone`]: crate::ClientError::ServerGone
//! [`ClientError::NoResponse`]: crate::ClientError::NoResponse
//! [`ServerError::ClientGone`]: crate::ServerError::ClientGone

// The service's layout and what both ends share.
mod end;
mod layout;
mod options;

// The two ends.
mod client;
mod server;

// Readiness descriptors for both ends, for poll loops.
mod readiness;

pub use client::{Client, RequestLoan, Response};
pub use options::ServiceOptions;

/// The layout of a service's region.
pub(crate) fn service_layout() -> crate::Layout {
    end::layout()
}
pub use server::{Request, ResponseLoan, Server};
