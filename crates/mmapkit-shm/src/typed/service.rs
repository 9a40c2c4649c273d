//! [`Client<Req, Resp>`] and [`Server<Req, Resp>`]: request-response with
//! requests of one type and responses of another, written and read in place.
//! The service's header records both types; an end made for other types is
//! refused, naming the requests' or the responses' types on both sides.
//! Requests and responses start 64-aligned, so each type may be aligned to at
//! most 64 bytes.

use std::marker::PhantomData;
use std::time::Duration;

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use super::wrong_length;
use crate::error::{ClientError, Result, ServerError};
use crate::message_type::MessageType;
use crate::service::{self as bytes, ServiceOptions};

/// `options` for a service of `Req` requests and `Resp` responses: the
/// request and response rooms are the types' sizes.
fn typed_options<Req, Resp>(options: &ServiceOptions) -> ServiceOptions {
    let mut options = options.clone();
    options.max_request(size_of::<Req>()).max_response(size_of::<Resp>());
    options.request_type = MessageType::of::<Req>();
    options.response_type = MessageType::of::<Resp>();
    options
}

/// A client sending `Req`s and receiving `Resp`s: see [`crate::Client`].
pub struct Client<Req, Resp> {
    inner: bytes::Client,
    _types: PhantomData<fn(Req) -> Resp>,
}

/// A server receiving `Req`s and answering `Resp`s: see [`crate::Server`].
pub struct Server<Req, Resp> {
    inner: bytes::Server,
    _types: PhantomData<fn(Req) -> Resp>,
}

macro_rules! typed_constructors {
    ($end:ident) => {
        impl<
            Req: IntoBytes + FromBytes + KnownLayout + Immutable,
            Resp: IntoBytes + FromBytes + KnownLayout + Immutable,
        > $end<Req, Resp>
        {
            /// Creates the service's named region for these request and
            /// response types and attaches as this end.
            ///
            /// # Safety
            /// As for [`crate::Client::create_named`].
            pub unsafe fn create_named(name: &str, options: &ServiceOptions) -> Result<$end<Req, Resp>> {
                // SAFETY: per the caller.
                let inner = unsafe { bytes::$end::create_named(name, &typed_options::<Req, Resp>(options)) }?;
                Ok($end { inner, _types: PhantomData })
            }

            /// Opens a service made for these request and response types and
            /// attaches as this end; one made for others (or for raw bytes)
            /// is refused, naming both sides' types.
            ///
            /// # Safety
            /// As for [`crate::Client::create_named`].
            pub unsafe fn open_named(name: &str, options: &ServiceOptions) -> Result<$end<Req, Resp>> {
                // SAFETY: per the caller.
                let inner = unsafe { bytes::$end::open_named(name, &typed_options::<Req, Resp>(options)) }?;
                Ok($end { inner, _types: PhantomData })
            }

            /// The byte end underneath.
            pub fn as_bytes(&self) -> &bytes::$end {
                &self.inner
            }
        }

        impl<Req, Resp> std::fmt::Debug for $end<Req, Resp> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($end))
                    .field("request", &std::any::type_name::<Req>())
                    .field("response", &std::any::type_name::<Resp>())
                    .field("inner", &self.inner)
                    .finish()
            }
        }
    };
}

typed_constructors!(Client);
typed_constructors!(Server);

impl<Req: IntoBytes + FromBytes + KnownLayout + Immutable, Resp: IntoBytes + FromBytes + KnownLayout + Immutable>
    Client<Req, Resp>
{
    /// Loans this client's request room as a `Req` (holding whatever bytes
    /// were there), waiting at most `timeout` for a call still out to settle.
    pub fn loan_timeout(&mut self, timeout: Option<Duration>) -> Result<TypedRequestLoan<'_, Req, Resp>, ClientError> {
        let region = self.inner.region().describe();
        let inner = self.inner.loan_timeout(size_of::<Req>(), timeout)?;
        Ok(TypedRequestLoan { inner, region, _types: PhantomData })
    }

    /// Loans this client's request room as a `Req`.
    pub fn loan(&mut self) -> Result<TypedRequestLoan<'_, Req, Resp>, ClientError> {
        self.loan_timeout(None)
    }

    /// Sends a copy of `request` and waits at most `timeout` in all for the response.
    pub fn call_timeout(
        &mut self,
        request: &Req,
        timeout: Option<Duration>,
    ) -> Result<TypedResponse<'_, Resp>, ClientError> {
        let region = self.inner.region().describe();
        checked_response(self.inner.call_timeout(request.as_bytes(), timeout)?, region)
    }

    /// Sends a copy of `request` and waits for the response.
    pub fn call(&mut self, request: &Req) -> Result<TypedResponse<'_, Resp>, ClientError> {
        self.call_timeout(request, None)
    }
}

/// A response whose length is checked to be a `Resp`'s (one of another
/// length, which only a byte server can send, is released and reported).
fn checked_response<Resp: IntoBytes + FromBytes + KnownLayout + Immutable>(
    response: bytes::Response<'_>,
    region: String,
) -> Result<TypedResponse<'_, Resp>, ClientError> {
    if Resp::ref_from_bytes(&response).is_err() {
        let what = wrong_length::<Resp>(response.len());
        drop(response);
        return Err(ClientError::Corrupt { region, what });
    }
    Ok(TypedResponse { inner: response, _type: PhantomData })
}

/// This client's request room as a `Req`; [`call`](Self::call) sends it.
pub struct TypedRequestLoan<'a, Req, Resp> {
    inner: bytes::RequestLoan<'a>,
    /// The service, as errors name it.
    region: String,
    _types: PhantomData<fn(Req) -> Resp>,
}

impl<'a, Req: IntoBytes + FromBytes + KnownLayout + Immutable, Resp: IntoBytes + FromBytes + KnownLayout + Immutable>
    TypedRequestLoan<'a, Req, Resp>
{
    /// Sends the request and waits at most `timeout` for its response.
    pub fn call(self, timeout: Option<Duration>) -> Result<TypedResponse<'a, Resp>, ClientError> {
        checked_response(self.inner.call(timeout)?, self.region)
    }
}

impl<Req: IntoBytes + FromBytes + KnownLayout + Immutable, Resp> std::ops::Deref for TypedRequestLoan<'_, Req, Resp> {
    type Target = Req;

    fn deref(&self) -> &Req {
        Req::ref_from_bytes(&self.inner).expect("a request room is a Req's size and 64-aligned")
    }
}

impl<Req: IntoBytes + FromBytes + KnownLayout + Immutable, Resp> std::ops::DerefMut
    for TypedRequestLoan<'_, Req, Resp>
{
    fn deref_mut(&mut self) -> &mut Req {
        Req::mut_from_bytes(&mut self.inner).expect("a request room is a Req's size and 64-aligned")
    }
}

/// A response read in place; dropping it ends the call.
pub struct TypedResponse<'a, Resp> {
    inner: bytes::Response<'a>,
    _type: PhantomData<&'a Resp>,
}

impl<Resp: IntoBytes + FromBytes + KnownLayout + Immutable> std::ops::Deref for TypedResponse<'_, Resp> {
    type Target = Resp;

    fn deref(&self) -> &Resp {
        Resp::ref_from_bytes(&self.inner).expect("the response's length and alignment were checked")
    }
}

impl<Req: IntoBytes + FromBytes + KnownLayout + Immutable, Resp: IntoBytes + FromBytes + KnownLayout + Immutable>
    Server<Req, Resp>
{
    /// The next request, waiting at most `timeout`. A request of another
    /// length (which only a byte client can send) is dropped unanswered (its
    /// call ends with `NoResponse`) and reported as `Corrupt`.
    pub fn recv_timeout(&mut self, timeout: Option<Duration>) -> Result<TypedRequest<'_, Req, Resp>, ServerError> {
        let region = self.inner.region().describe();
        let request = self.inner.recv_timeout(timeout)?;
        if Req::ref_from_bytes(&request).is_err() {
            let what = wrong_length::<Req>(request.len());
            drop(request);
            return Err(ServerError::Corrupt { region, what });
        }
        Ok(TypedRequest { inner: request, _types: PhantomData })
    }

    /// The next request, waiting as long as it takes.
    pub fn recv(&mut self) -> Result<TypedRequest<'_, Req, Resp>, ServerError> {
        self.recv_timeout(None)
    }
}

/// A request read in place, to be answered with a `Resp`.
pub struct TypedRequest<'a, Req, Resp> {
    inner: bytes::Request<'a>,
    _types: PhantomData<fn(Req) -> Resp>,
}

impl<'a, Req: IntoBytes + FromBytes + KnownLayout + Immutable, Resp: IntoBytes + FromBytes + KnownLayout + Immutable>
    TypedRequest<'a, Req, Resp>
{
    /// The client's place.
    pub fn client(&self) -> u64 {
        self.inner.client()
    }

    /// Responds with a copy of `response`.
    pub fn respond(self, response: &Resp) -> Result<(), ServerError> {
        self.inner.respond(response.as_bytes())
    }

    /// Loans the client's response room as a `Resp` (holding whatever
    /// bytes were there), to write the response in place.
    pub fn loan_response(&mut self) -> Result<TypedResponseLoan<'_, 'a, Resp>, ServerError> {
        Ok(TypedResponseLoan { inner: self.inner.loan_response(size_of::<Resp>())?, _type: PhantomData })
    }
}

impl<Req: IntoBytes + FromBytes + KnownLayout + Immutable, Resp> std::ops::Deref for TypedRequest<'_, Req, Resp> {
    type Target = Req;

    fn deref(&self) -> &Req {
        Req::ref_from_bytes(&self.inner).expect("the request's length and alignment were checked")
    }
}

/// The client's response room as a `Resp`; [`commit`](Self::commit) sends it.
pub struct TypedResponseLoan<'r, 'a, Resp> {
    inner: bytes::ResponseLoan<'r, 'a>,
    _type: PhantomData<&'r mut Resp>,
}

impl<Resp> TypedResponseLoan<'_, '_, Resp> {
    /// Sends the response.
    pub fn commit(self) -> Result<(), ServerError> {
        self.inner.commit()
    }
}

impl<Resp: IntoBytes + FromBytes + KnownLayout + Immutable> std::ops::Deref for TypedResponseLoan<'_, '_, Resp> {
    type Target = Resp;

    fn deref(&self) -> &Resp {
        Resp::ref_from_bytes(&self.inner).expect("a response room is a Resp's size and 64-aligned")
    }
}

impl<Resp: IntoBytes + FromBytes + KnownLayout + Immutable> std::ops::DerefMut for TypedResponseLoan<'_, '_, Resp> {
    fn deref_mut(&mut self) -> &mut Resp {
        Resp::mut_from_bytes(&mut self.inner).expect("a response room is a Resp's size and 64-aligned")
    }
}

macro_rules! typed_debug {
    ($name:ident < $($lt:lifetime),* ; $($ty:ident),* >) => {
        impl<$($lt,)* $($ty),*> std::fmt::Debug for $name<$($lt,)* $($ty),*> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let mut d = f.debug_struct(stringify!($name));
                $(d.field(stringify!($ty), &std::any::type_name::<$ty>());)*
                d.finish()
            }
        }
    };
}

typed_debug!(TypedRequestLoan<'a; Req, Resp>);
typed_debug!(TypedResponse<'a; Resp>);
typed_debug!(TypedRequest<'a; Req, Resp>);
typed_debug!(TypedResponseLoan<'r, 'a; Resp>);
