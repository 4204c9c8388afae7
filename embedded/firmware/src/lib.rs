//! What the three images share: a loopback network device for smoltcp, TCP sockets seen
//! through the `embedded-io-async` traits, a tick clock, a two-task executor that polls
//! both ends in one loop, and the stack high-water mark.
//!
//! Everything lives on the stack of `main`: no allocator, no `static mut`. The one
//! `unsafe` block paints and reads the free stack to measure its high-water mark.
#![no_std]

use core::cell::{Cell, RefCell};
use core::future::{poll_fn, Future};
use core::pin::pin;
use core::task::{Context, Poll, Waker};

use cortex_m_semihosting::hprintln;
use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use smoltcp::socket::tcp;
use smoltcp::time::Instant as NetInstant;
use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr};

/// The loopback link's MTU.
pub const MTU: usize = 1500;
/// Packets the loopback link holds in flight.
const QUEUE: usize = 4;

/// A loopback link: what is sent is received, in order, from a fixed queue.
pub struct Loopback {
    queue: [[u8; MTU]; QUEUE],
    lens: [usize; QUEUE],
    head: usize,
    count: usize,
    /// The packet being received, moved out of the queue.
    received: [u8; MTU],
}

impl Loopback {
    /// An empty link.
    pub const fn new() -> Self {
        Loopback {
            queue: [[0; MTU]; QUEUE],
            lens: [0; QUEUE],
            head: 0,
            count: 0,
            received: [0; MTU],
        }
    }
}

impl Default for Loopback {
    fn default() -> Self {
        Self::new()
    }
}

/// A received packet.
pub struct Rx<'a>(&'a [u8]);

/// Room to send a packet.
pub struct Tx<'a> {
    queue: &'a mut [[u8; MTU]; QUEUE],
    lens: &'a mut [usize; QUEUE],
    head: usize,
    count: &'a mut usize,
}

impl phy::RxToken for Rx<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(self.0)
    }
}

impl phy::TxToken for Tx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let tail = (self.head + *self.count) % QUEUE;
        self.lens[tail] = len;
        *self.count += 1;
        f(&mut self.queue[tail][..len])
    }
}

impl Device for Loopback {
    type RxToken<'a> = Rx<'a>;
    type TxToken<'a> = Tx<'a>;

    fn receive(&mut self, _now: NetInstant) -> Option<(Rx<'_>, Tx<'_>)> {
        // Receive only when a reply could be queued too (the queue has room after the pop).
        if self.count == 0 {
            return None;
        }
        let len = self.lens[self.head];
        self.received[..len].copy_from_slice(&self.queue[self.head][..len]);
        self.head = (self.head + 1) % QUEUE;
        self.count -= 1;
        let Loopback {
            queue,
            lens,
            head,
            count,
            received,
        } = self;
        Some((
            Rx(&received[..len]),
            Tx {
                queue,
                lens,
                head: *head,
                count,
            },
        ))
    }

    fn transmit(&mut self, _now: NetInstant) -> Option<Tx<'_>> {
        if self.count == QUEUE {
            return None;
        }
        Some(Tx {
            queue: &mut self.queue,
            lens: &mut self.lens,
            head: self.head,
            count: &mut self.count,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ip;
        caps.max_transmission_unit = MTU;
        caps
    }
}

/// The loopback address both ends use.
pub const ADDRESS: IpAddress = IpAddress::v4(127, 0, 0, 1);
/// The server's port.
pub const PORT: u16 = 8080;

/// The TCP/IP stack: interface, link and sockets.
pub struct Net<'a> {
    iface: Interface,
    device: &'a mut Loopback,
    sockets: SocketSet<'a>,
}

impl<'a> Net<'a> {
    /// An interface on `device` with 127.0.0.1/8, over `sockets`.
    pub fn new(device: &'a mut Loopback, sockets: SocketSet<'a>) -> Self {
        let mut config = Config::new(HardwareAddress::Ip);
        config.random_seed = 0x5eed;
        let mut iface = Interface::new(config, device, NetInstant::ZERO);
        iface.update_ip_addrs(|addrs| {
            let _ = addrs.push(IpCidr::new(ADDRESS, 8));
        });
        Net {
            iface,
            device,
            sockets,
        }
    }

    /// Adds a TCP socket over the given buffers.
    pub fn add(&mut self, rx: &'a mut [u8], tx: &'a mut [u8]) -> SocketHandle {
        let socket = tcp::Socket::new(tcp::SocketBuffer::new(rx), tcp::SocketBuffer::new(tx));
        self.sockets.add(socket)
    }

    /// A socket.
    pub fn socket(&mut self, handle: SocketHandle) -> &mut tcp::Socket<'a> {
        self.sockets.get_mut(handle)
    }

    /// Starts a connection from `handle` to the server.
    pub fn connect(&mut self, handle: SocketHandle, local_port: u16) {
        let socket = self.sockets.get_mut::<tcp::Socket>(handle);
        socket
            .connect(self.iface.context(), (ADDRESS, PORT), local_port)
            .expect("connect");
    }

    /// Moves packets: one round of the stack at `now_ms`.
    pub fn poll(&mut self, now_ms: u64) {
        let now = NetInstant::from_millis(now_ms as i64);
        self.iface.poll(now, self.device, &mut self.sockets);
    }
}

/// A transport error (the socket was reset or closed under us).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetError;

impl embedded_io_async::Error for NetError {
    fn kind(&self) -> embedded_io_async::ErrorKind {
        embedded_io_async::ErrorKind::ConnectionReset
    }
}

/// A TCP socket of the shared stack, as an `embedded-io-async` stream (as embassy-net's
/// `TcpSocket` is).
pub struct Tcp<'n, 'a> {
    net: &'n RefCell<Net<'a>>,
    handle: SocketHandle,
}

impl<'n, 'a> Tcp<'n, 'a> {
    /// The socket `handle` of `net`.
    pub fn new(net: &'n RefCell<Net<'a>>, handle: SocketHandle) -> Self {
        Tcp { net, handle }
    }

    /// Waits until the connection is established (both directions open).
    pub async fn established(&mut self) {
        poll_fn(|_| {
            let mut net = self.net.borrow_mut();
            match net.socket(self.handle).state() {
                tcp::State::Established => Poll::Ready(()),
                _ => Poll::Pending,
            }
        })
        .await
    }

    /// Sends FIN (our side is done) and waits until the peer's side is done too.
    pub async fn close(&mut self) {
        self.net.borrow_mut().socket(self.handle).close();
        poll_fn(|_| {
            let mut net = self.net.borrow_mut();
            let socket = net.socket(self.handle);
            if socket.is_open() && socket.may_recv() {
                // Drain what the peer still sends until its FIN.
                let _ = socket.recv(|bytes| (bytes.len(), ()));
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        })
        .await
    }
}

impl embedded_io_async::ErrorType for Tcp<'_, '_> {
    type Error = NetError;
}

impl embedded_io_async::Read for Tcp<'_, '_> {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, NetError> {
        poll_fn(|_| {
            let mut net = self.net.borrow_mut();
            let socket = net.socket(self.handle);
            if socket.can_recv() {
                Poll::Ready(socket.recv_slice(buf).map_err(|_| NetError))
            } else if !socket.may_recv() {
                // The peer's FIN (or a reset): end of stream.
                Poll::Ready(Ok(0))
            } else {
                Poll::Pending
            }
        })
        .await
    }
}

impl embedded_io_async::Write for Tcp<'_, '_> {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, NetError> {
        poll_fn(|_| {
            let mut net = self.net.borrow_mut();
            let socket = net.socket(self.handle);
            if !socket.may_send() {
                Poll::Ready(Err(NetError))
            } else if socket.can_send() {
                Poll::Ready(socket.send_slice(buf).map_err(|_| NetError))
            } else {
                Poll::Pending
            }
        })
        .await
    }
}

/// Milliseconds of simulated time: the main loop advances it by one per round, so every
/// run is the same, whatever the host's speed.
pub struct Tick(Cell<u64>);

impl Tick {
    /// Time zero.
    pub const fn new() -> Self {
        Tick(Cell::new(0))
    }

    /// Now, in milliseconds.
    pub fn ms(&self) -> u64 {
        self.0.get()
    }

    /// One millisecond later.
    pub fn advance(&self) {
        self.0.set(self.0.get() + 1);
    }

    /// Waits until `ms`.
    pub async fn until(&self, ms: u64) {
        poll_fn(|_| {
            if self.ms() >= ms {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await
    }
}

impl Default for Tick {
    fn default() -> Self {
        Self::new()
    }
}

/// Runs two tasks to completion, with the network and the clock between rounds; gives up
/// after `limit_ms` of simulated time.
pub fn run<A: Future, B: Future>(
    net: &RefCell<Net<'_>>,
    tick: &Tick,
    a: A,
    b: B,
    limit_ms: u64,
) -> Option<(A::Output, B::Output)> {
    hprintln!(
        "tasks: server future {} bytes, client future {} bytes",
        core::mem::size_of_val(&a),
        core::mem::size_of_val(&b)
    );
    let mut a = pin!(a);
    let mut b = pin!(b);
    let (mut a_out, mut b_out) = (None, None);
    let mut cx = Context::from_waker(Waker::noop());
    while tick.ms() < limit_ms {
        net.borrow_mut().poll(tick.ms());
        if a_out.is_none() {
            if let Poll::Ready(out) = a.as_mut().poll(&mut cx) {
                a_out = Some(out);
            }
        }
        if b_out.is_none() {
            if let Poll::Ready(out) = b.as_mut().poll(&mut cx) {
                b_out = Some(out);
            }
        }
        if a_out.is_some() && b_out.is_some() {
            return a_out.zip(b_out);
        }
        tick.advance();
    }
    None
}

/// The clients' RNG (for the handshake key and the masks) in both WebSocket images:
/// xorshift32, seeded as a real device would seed from its hardware RNG.
pub struct XorShift(pub u32);

impl rand_core::RngCore for XorShift {
    fn next_u32(&mut self) -> u32 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.0 = x;
        x
    }

    fn next_u64(&mut self) -> u64 {
        (u64::from(self.next_u32()) << 32) | u64::from(self.next_u32())
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(4) {
            let word = self.next_u32().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

/// The stack-painting pattern.
const PAINT: u32 = 0x5A5A_A5A5;

extern "C" {
    static mut __sheap: u32;
    static mut _stack_start: u32;
}

fn stack_bottom() -> usize {
    core::ptr::addr_of!(__sheap) as usize
}

fn stack_top() -> usize {
    core::ptr::addr_of!(_stack_start) as usize
}

/// Paints the free stack (below the caller's frame) with a pattern, for
/// [`stack_high_water`]. Call it first thing in `main`.
#[inline(never)]
pub fn paint_stack() {
    let marker = 0u32;
    let here = core::ptr::addr_of!(marker) as usize;
    let mut at = stack_bottom();
    // Leave this function's own frame alone.
    while at + 256 < here {
        // SAFETY: [__sheap, here - 256) is RAM below the live stack that nothing uses (no
        // heap): writing the pattern there changes nothing that is read.
        unsafe { core::ptr::write_volatile(at as *mut u32, PAINT) };
        at += 4;
    }
}

/// The most stack used since [`paint_stack`]: from the top of RAM down to the lowest word
/// that is no longer the pattern.
pub fn stack_high_water() -> usize {
    let mut at = stack_bottom();
    // SAFETY: reads of RAM between the end of .bss and the stack top, all initialized
    // (painted or used as stack).
    while at < stack_top() && unsafe { core::ptr::read_volatile(at as *const u32) } == PAINT {
        at += 4;
    }
    stack_top() - at
}

/// The RAM from the end of `.bss` to the top: what the stack may use.
pub fn stack_room() -> usize {
    stack_top() - stack_bottom()
}

/// Prints the run's numbers: simulated time, stack high-water mark, the room it had.
pub fn report(image: &str, tick: &Tick) {
    hprintln!(
        "{}: done in {} ms of simulated time; stack high-water {} bytes of {}",
        image,
        tick.ms(),
        stack_high_water(),
        stack_room()
    );
}

/// Fails the run: prints `what` and exits with status 1.
pub fn fail(what: &str) -> ! {
    hprintln!("FAIL: {}", what);
    cortex_m_semihosting::debug::exit(cortex_m_semihosting::debug::EXIT_FAILURE);
    #[allow(clippy::empty_loop)]
    loop {}
}

/// A panic ends the run with status 101, without formatting its message (so that no
/// image carries panic messages and their formatting: the sizes compare the code).
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    hprintln!("PANIC");
    cortex_m_semihosting::debug::exit(cortex_m_semihosting::debug::EXIT_FAILURE);
    #[allow(clippy::empty_loop)]
    loop {}
}

/// Ends the run with status 0.
pub fn pass() -> ! {
    hprintln!("PASS");
    cortex_m_semihosting::debug::exit(cortex_m_semihosting::debug::EXIT_SUCCESS);
    #[allow(clippy::empty_loop)]
    loop {}
}
