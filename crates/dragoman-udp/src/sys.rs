//! The system calls (`sendmmsg`, `recvmmsg`, `poll`, `setsockopt`), the socket-address cast and
//! the reading of control messages: with the two call sites in `send.rs` and `recv.rs` that build
//! the message headers, the crate's only `unsafe` code. Every pointer handed to the kernel borrows
//! from the caller's frame, which outlives the call.
#![allow(unsafe_code)]

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::{Duration, SystemTime};

/// `sendmmsg(2)`: the kernel reads each `msghdr` (name, iovecs and the bytes they point at,
/// control messages) and writes only each `msg_len`. Returns how many messages it sent (from the
/// first).
///
/// # Safety
/// Every pointer inside `messages` (`msg_name`, `msg_iov` with `msg_iovlen` iovecs, each iovec's
/// bytes, `msg_control`) must point to live memory of at least the stated length for the duration
/// of the call.
pub(crate) unsafe fn sendmmsg(
    fd: BorrowedFd<'_>,
    messages: &mut [libc::mmsghdr],
) -> io::Result<usize> {
    if messages.is_empty() {
        return Ok(0);
    }
    // SAFETY: `messages` is a live, exclusive slice of initialised `mmsghdr`s and its length is
    // passed with it; the pointers inside are valid by this function's contract. `fd` is open
    // while borrowed.
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
///
/// # Safety
/// Every buffer inside `messages` (`msg_name` with `msg_namelen` bytes, `msg_iov` with
/// `msg_iovlen` iovecs, each iovec's `iov_len` bytes) must be live, writable and not otherwise
/// borrowed for the duration of the call.
pub(crate) unsafe fn recvmmsg(
    fd: BorrowedFd<'_>,
    messages: &mut [libc::mmsghdr],
) -> io::Result<usize> {
    if messages.is_empty() {
        return Ok(0);
    }
    // SAFETY: the buffers are valid by this function's contract; a null timeout means none.
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

/// Have the kernel stamp every datagram received on `fd` with its arrival time (`SO_TIMESTAMPNS`:
/// the real-time clock, in nanoseconds, as a control message of each `recvmmsg` message).
pub fn enable_arrival_times(fd: BorrowedFd<'_>) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: the option value is a live `c_int` with its size passed alongside.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            std::ptr::from_ref(&on).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The arrival time the kernel put in a received message's control data (`SCM_TIMESTAMPNS`), if
/// there is one.
///
/// # Safety
/// `header.msg_control` must be null or point to `header.msg_controllen` live, initialised bytes,
/// as `recvmmsg` leaves them, aligned for `cmsghdr`.
pub(crate) unsafe fn arrival_time(header: &libc::msghdr) -> Option<SystemTime> {
    // SAFETY: by the contract, the control buffer and its length are as the kernel wrote them;
    // CMSG_FIRSTHDR and CMSG_NXTHDR stay within `msg_controllen` and return null past its end.
    let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(header) };
    while !cmsg.is_null() {
        // SAFETY: non-null cmsg pointers from CMSG_FIRSTHDR/CMSG_NXTHDR point at a whole header
        // inside the buffer.
        let c = unsafe { &*cmsg };
        if c.cmsg_level == libc::SOL_SOCKET
            && c.cmsg_type == libc::SCM_TIMESTAMPNS
            && c.cmsg_len as usize
                >= unsafe { libc::CMSG_LEN(size_of::<libc::timespec>() as u32) } as usize
        {
            // SAFETY: the length check above says a whole `timespec` follows the header; the
            // data may be unaligned for it, hence the unaligned read.
            let ts: libc::timespec =
                unsafe { std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast()) };
            let since_epoch = Duration::new(
                u64::try_from(ts.tv_sec).ok()?,
                u32::try_from(ts.tv_nsec).ok()?,
            );
            return SystemTime::UNIX_EPOCH.checked_add(since_epoch);
        }
        // SAFETY: as for CMSG_FIRSTHDR.
        cmsg = unsafe { libc::CMSG_NXTHDR(header, cmsg) };
    }
    None
}
