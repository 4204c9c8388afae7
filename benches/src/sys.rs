//! Process resources: CPU time, resident memory, the open-file limit, and
//! the raw socket calls the load generator makes (Linux).
#![allow(unsafe_code)] // a few libc calls, each with its SAFETY comment

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

/// CPU time (user + system) this process has used so far, from `getrusage`.
pub fn self_cpu_time() -> Duration {
    // SAFETY: getrusage only writes the struct we pass; all-zero is a valid rusage.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a live rusage, RUSAGE_SELF is a valid `who`.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    if rc != 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, (t.tv_usec as u32) * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Raises the soft open-file limit to the hard limit; returns the new soft limit.
///
/// The idle scenario holds 10,000 connections, so the load generator and the
/// server each need that many descriptors.
pub fn raise_nofile_limit() -> u64 {
    // SAFETY: all-zero is a valid rlimit; getrlimit/setrlimit only read/write it.
    let mut lim: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a live rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return 0;
    }
    if lim.rlim_cur < lim.rlim_max {
        let want = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: a valid pointer to a live rlimit.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &want) } == 0 {
            lim.rlim_cur = lim.rlim_max;
        }
    }
    lim.rlim_cur
}

/// `recv(2)` on a socket the caller owns: a read that bypasses the async
/// runtime's readiness cache (the load generator reads inside
/// `tokio::net::TcpStream::try_io`, so it can clear readiness after a short
/// read instead of paying one more read that returns `EAGAIN`).
pub fn recv(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    recv_with_flags(fd, buf, 0)
}

/// Drops up to `buf.len()` received bytes from a TCP socket without copying
/// them out (`recv` with `MSG_TRUNC`, which TCP on Linux treats as "discard");
/// returns how many were dropped. `buf` is not written on TCP; it is passed so
/// the call stays sound on any socket.
pub fn discard(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    recv_with_flags(fd, buf, libc::MSG_TRUNC)
}

fn recv_with_flags(fd: RawFd, buf: &mut [u8], flags: libc::c_int) -> io::Result<usize> {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the whole call;
    // recv writes at most that many. A bad fd is an error, not UB.
    let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), flags) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// An epoll instance (level-triggered), for the fan-out scenario's subscribers: one
/// thread reading thousands of sockets without a task per connection.
#[derive(Debug)]
pub struct Epoll(RawFd);

/// One readiness event of [`Epoll::wait`].
pub type EpollEvent = libc::epoll_event;

/// Readable (or closed by the peer), for [`Epoll::add`].
pub const EPOLL_IN: u32 = libc::EPOLLIN as u32;
/// Writable, for [`Epoll::add`].
pub const EPOLL_OUT: u32 = libc::EPOLLOUT as u32;

impl Epoll {
    /// A new epoll instance.
    pub fn new() -> io::Result<Epoll> {
        // SAFETY: no pointers; a negative result is an error.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Epoll(fd))
    }

    fn ctl(&self, op: libc::c_int, fd: RawFd, token: u64, events: u32) -> io::Result<()> {
        let mut ev = libc::epoll_event { events, u64: token };
        // SAFETY: `ev` is a valid epoll_event for the whole call; a bad fd is an error.
        if unsafe { libc::epoll_ctl(self.0, op, fd, &mut ev) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Watches `fd` for `events` (`EPOLL_IN`, `EPOLL_OUT`), reported with `token`.
    pub fn add(&self, fd: RawFd, token: u64, events: u32) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, token, events)
    }

    /// Changes what `fd` is watched for.
    pub fn modify(&self, fd: RawFd, token: u64, events: u32) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_MOD, fd, token, events)
    }

    /// Stops watching `fd`.
    pub fn delete(&self, fd: RawFd) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_DEL, fd, 0, 0)
    }

    /// Waits up to `timeout_ms` for events; returns how many of `events` were filled.
    pub fn wait(&self, events: &mut [EpollEvent], timeout_ms: i32) -> io::Result<usize> {
        let max = events.len().min(libc::c_int::MAX as usize) as libc::c_int;
        // SAFETY: `events` is valid for writes of `max` entries; the kernel writes at
        // most that many.
        let n = unsafe { libc::epoll_wait(self.0, events.as_mut_ptr(), max, timeout_ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted {
                Ok(0)
            } else {
                Err(e)
            };
        }
        Ok(n as usize)
    }

    /// `count` empty events, for [`Epoll::wait`].
    pub fn events(count: usize) -> Vec<EpollEvent> {
        vec![libc::epoll_event { events: 0, u64: 0 }; count]
    }

    /// The token and the event bits of one event.
    pub fn token_and_flags(event: &EpollEvent) -> (u64, u32) {
        // Copied out by value: the struct is packed on x86-64.
        let (token, flags) = (event.u64, event.events);
        (token, flags)
    }
}

impl Drop for Epoll {
    fn drop(&mut self) {
        // SAFETY: closes the descriptor this struct owns, once.
        unsafe { libc::close(self.0) };
    }
}

/// Sets the TCP congestion control of one socket (`TCP_CONGESTION`), for
/// example `cubic`: the load generator's sockets use one that does not pace, so
/// its sends are not spread out by timers (see `loadgen --congestion`).
pub fn set_congestion_control(fd: RawFd, name: &str) -> io::Result<()> {
    // SAFETY: the pointer and length describe `name`'s bytes, valid for the
    // whole call; the kernel only reads them. A bad fd is an error, not UB.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_CONGESTION,
            name.as_ptr().cast(),
            name.len() as libc::socklen_t,
        )
    };
    if rc != 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// The TCP congestion control a socket uses (`TCP_CONGESTION`), as the kernel
/// names it.
pub fn congestion_control(fd: RawFd) -> io::Result<String> {
    let mut name = [0u8; 32];
    let mut len = name.len() as libc::socklen_t;
    // SAFETY: `name` is valid for writes of `len` bytes and `len` for a write of
    // its own; the kernel writes at most `len` bytes and stores the count back.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_CONGESTION,
            name.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let name = &name[..(len as usize).min(name.len())];
    let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
    Ok(String::from_utf8_lossy(&name[..end]).into_owned())
}

/// The system's default TCP congestion control (what a socket gets unless it
/// sets its own), or `None` where `/proc` does not say.
pub fn default_congestion_control() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_congestion_control").ok()?;
    Some(name.trim().to_string()).filter(|n| !n.is_empty())
}

/// Clock ticks per second, the unit of `utime` / `stime` in `/proc/PID/stat`.
pub fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf has no memory effects.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

/// CPU time (user + system, all threads) used so far by process `pid`, from
/// `/proc/PID/stat`; resolution is one clock tick (usually 10 ms).
pub fn process_cpu_time(pid: u32) -> io::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) is in parentheses and may contain spaces.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| io::Error::other("malformed /proc/PID/stat"))?;
    // After ')': field 3 (state) is index 0, so utime (14) is 11 and stime (15) is 12.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| -> io::Result<u64> {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| io::Error::other("malformed /proc/PID/stat"))
    };
    let ticks = num(11)? + num(12)?;
    let hz = clock_ticks_per_second();
    Ok(Duration::from_nanos(ticks * 1_000_000_000 / hz))
}

/// CPU time all processes on the machine have used so far (every CPU, user +
/// system + interrupts + steal), from the first line of `/proc/stat`. The
/// load generator subtracts its own and the server's time from its delta to
/// see how much other work ran during a measurement.
pub fn system_busy_time() -> io::Result<Duration> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let line = stat
        .lines()
        .find(|l| l.starts_with("cpu "))
        .ok_or_else(|| io::Error::other("no cpu line in /proc/stat"))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    // user nice system idle iowait irq softirq steal (guest is inside user)
    let busy: u64 = [0, 1, 2, 5, 6, 7].iter().filter_map(|&i| v.get(i)).sum();
    Ok(Duration::from_nanos(
        busy * 1_000_000_000 / clock_ticks_per_second(),
    ))
}

/// Resident set size of process `pid` in bytes (`VmRSS` of `/proc/PID/status`).
pub fn process_rss_bytes(pid: u32) -> io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .ok_or_else(|| io::Error::other("no VmRSS in /proc/PID/status"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsRawFd as _;

    #[test]
    fn own_process_is_readable() {
        let pid = std::process::id();
        assert!(process_rss_bytes(pid).unwrap() > 0);
        // Burn a little CPU so both clocks move.
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        assert!(self_cpu_time() > Duration::ZERO);
        process_cpu_time(pid).unwrap();
        assert!(system_busy_time().unwrap() > Duration::ZERO);
        assert!(clock_ticks_per_second() > 0);
        assert!(raise_nofile_limit() > 0);
    }

    #[test]
    fn a_socket_takes_the_congestion_control_it_is_given() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let stream = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let fd = stream.as_raw_fd();
        // reno is built into every Linux kernel and always allowed.
        set_congestion_control(fd, "reno").unwrap();
        assert_eq!(congestion_control(fd).unwrap(), "reno");
        assert!(set_congestion_control(fd, "no-such-algorithm").is_err());
        assert_eq!(congestion_control(fd).unwrap(), "reno");
    }

    #[test]
    fn discarded_bytes_are_dropped_without_being_copied() {
        use std::io::Write as _;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut sender = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (receiver, _) = listener.accept().unwrap();
        receiver
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        sender.write_all(b"0123456789").unwrap();
        let fd = receiver.as_raw_fd();
        let mut untouched = [0xAA; 4];
        assert_eq!(discard(fd, &mut untouched).unwrap(), 4);
        assert_eq!(untouched, [0xAA; 4], "MSG_TRUNC on TCP copies nothing");
        let mut rest = [0; 16];
        let mut got = 0;
        for _ in 0..100 {
            got += recv(fd, &mut rest[got..]).unwrap();
            if got >= 6 {
                break;
            }
        }
        assert_eq!(&rest[..got], b"456789");
    }
}
