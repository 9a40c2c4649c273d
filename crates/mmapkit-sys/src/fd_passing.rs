//! Passing a file descriptor to another process over a connected Unix
//! stream socket (`SCM_RIGHTS`).

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;

use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, SendAncillaryBuffer, SendAncillaryMessage};

use crate::os;

/// Sends `fd` over a connected Unix stream socket (`SCM_RIGHTS`), with one data byte.
pub fn send_fd(socket: &UnixStream, fd: BorrowedFd<'_>) -> io::Result<()> {
    let fds = [fd];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    control.push(SendAncillaryMessage::ScmRights(&fds));
    let data = [std::io::IoSlice::new(b"F")];
    os::prepare_to_send(socket.as_fd())?;
    rustix::net::sendmsg(socket.as_fd(), &data, &mut control, os::SEND_FLAGS)?;
    Ok(())
}

/// Receives one file descriptor sent with [`send_fd`].
pub fn recv_fd(socket: &UnixStream) -> io::Result<OwnedFd> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let mut byte = [0u8; 1];
    let mut data = [std::io::IoSliceMut::new(&mut byte)];
    let received = rustix::net::recvmsg(socket.as_fd(), &mut data, &mut control, os::RECV_FLAGS)?;
    if received.bytes == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the peer closed the socket before sending a descriptor",
        ));
    }
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(mut fds) = message
            && let Some(fd) = fds.next()
        {
            os::received(fd.as_fd())?;
            return Ok(fd);
        }
    }
    Err(io::Error::new(io::ErrorKind::InvalidData, "the message carried no file descriptor"))
}
