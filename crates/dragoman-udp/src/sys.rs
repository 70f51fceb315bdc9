//! The system calls (`sendmmsg`, `recvmmsg`, `poll`): the crate's only `unsafe` code. Every
//! pointer handed to the kernel borrows from the caller's frame, which outlives the call.
#![allow(unsafe_code)]

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::Duration;

/// `sendmmsg(2)`: the kernel reads each `msghdr` (name, iovecs and the bytes they point at) and
/// writes only each `msg_len`. Returns how many messages it sent (from the first).
pub(crate) fn sendmmsg(fd: BorrowedFd<'_>, messages: &mut [libc::mmsghdr]) -> io::Result<usize> {
    if messages.is_empty() {
        return Ok(0);
    }
    // SAFETY: `messages` is a live, exclusive slice of initialised `mmsghdr`s and its length is
    // passed with it. Every pointer inside (addresses, iovecs, datagram bytes) borrows from the
    // caller's frame for the duration of this call, with matching lengths. `fd` is open while
    // borrowed.
    let n = unsafe {
        libc::sendmmsg(
            fd.as_raw_fd(),
            messages.as_mut_ptr(),
            messages.len() as libc::c_uint,
            libc::MSG_DONTWAIT,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

/// `recvmmsg(2)` without waiting: the kernel writes the datagrams into the iovecs' buffers, their
/// source addresses into each `msg_name` (up to `msg_namelen`), and each `msg_len`/`msg_flags`.
pub(crate) fn recvmmsg(fd: BorrowedFd<'_>, messages: &mut [libc::mmsghdr]) -> io::Result<usize> {
    if messages.is_empty() {
        return Ok(0);
    }
    // SAFETY: as for `sendmmsg`; in addition every buffer the kernel writes (`msg_name` with its
    // `msg_namelen`, each iovec with its `iov_len`) is exclusively borrowed by the caller for the
    // duration of the call and at least as long as stated. A null timeout means none.
    let n = unsafe {
        libc::recvmmsg(
            fd.as_raw_fd(),
            messages.as_mut_ptr(),
            messages.len() as libc::c_uint,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

/// Wait until `fd` can take a datagram again (its send buffer has room), at most `timeout`.
/// Returns whether it can.
pub fn wait_writable(fd: BorrowedFd<'_>, timeout: Duration) -> io::Result<bool> {
    let mut pollfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLOUT,
        revents: 0,
    };
    let millis = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
    // SAFETY: one live, exclusively borrowed `pollfd`, with its count of 1.
    let n = unsafe { libc::poll(&mut pollfd, 1, millis) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n > 0 && pollfd.revents & libc::POLLOUT != 0)
}

/// A zeroed `sockaddr_storage`, the buffer `recvmmsg` writes a source address into.
pub(crate) fn empty_storage() -> libc::sockaddr_storage {
    // SAFETY: `sockaddr_storage` is plain old data; all zeroes is a valid (AF_UNSPEC) value.
    unsafe { std::mem::zeroed() }
}

/// The address `recvmmsg` wrote, if it is IPv4 or IPv6.
pub(crate) fn to_socket_addr(storage: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match libc::c_int::from(storage.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the kernel wrote a `sockaddr_in`; `sockaddr_storage` is
            // larger than it and aligned for every socket address type.
            let addr = unsafe { &*std::ptr::from_ref(storage).cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(u32::from_be(addr.sin_addr.s_addr));
            Some(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(addr.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for `sockaddr_in6`.
            let addr = unsafe { &*std::ptr::from_ref(storage).cast::<libc::sockaddr_in6>() };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(addr.sin6_addr.s6_addr),
                u16::from_be(addr.sin6_port),
                addr.sin6_flowinfo,
                addr.sin6_scope_id,
            )))
        }
        _ => None,
    }
}
