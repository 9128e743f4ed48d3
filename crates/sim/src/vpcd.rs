//! The simulated card behind a real pcscd, through vsmartcard's vpcd reader driver.
//!
//! vpcd listens on TCP (35963 for `Virtual PCD 00 00`, 35964 for `00 01`) and the card connects
//! to it. Every message in both directions is a 2-byte big-endian length and a payload. A
//! 1-byte payload from vpcd is a control byte: `00` power off, `01` power on, `02` reset (no
//! reply) and `04` get ATR (reply: the ATR). Any other payload is a command APDU, answered with
//! one frame holding the response APDU.
//!
//! What the bridge takes care of:
//! - `TCP_QUICKACK` before every read, and each reply written in one call: Debian's vpcd writes
//!   the length and the payload separately without `TCP_NODELAY`, and a delayed ACK would cost
//!   about 40 ms per APDU;
//! - the ATR is answered whenever asked (pcscd polls presence every 400 ms);
//! - power on/off and reset clear the engine's volatile state; counters persist;
//! - never a 0-length frame (vpcd would take it as removal) and never more than 65535 bytes;
//! - connecting is retried until vpcd listens; closing the socket is how the card is pulled.
//!
//! [`run`] serves on the calling thread until stopped; [`spawn`] runs it on a thread and returns
//! a [`VpcdHandle`] that can stop the bridge or pull the card.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::engine::Card;
use crate::inprocess::{Delivered, SimCard};
use crate::state::StateError;

/// vpcd's port for its first slot (`Virtual PCD 00 00`); the second slot is the next port.
pub const DEFAULT_PORT: u16 = 35963;

/// Largest payload a frame can carry (the length field is 16 bits).
const MAX_FRAME: usize = 65_535;

/// A flag that asks a running bridge to stop. Clones share the flag.
#[derive(Debug, Clone, Default)]
pub struct StopSignal(Arc<AtomicBool>);

impl StopSignal {
    /// A signal not yet raised.
    pub fn new() -> Self {
        StopSignal::default()
    }

    /// Asks the bridge to stop; it closes its connection within one poll interval.
    pub fn stop(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether stop was asked.
    pub fn is_stopped(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// How the bridge connects and waits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VpcdOptions {
    /// Give up connecting after this long (`None`: keep trying until stopped).
    pub connect_timeout: Option<Duration>,
    /// Pause between connection attempts.
    pub retry_interval: Duration,
    /// Connect again when vpcd closes the connection (pcscd restarted), instead of returning.
    pub reconnect: bool,
    /// How often a blocked read wakes up to look at the stop signal.
    pub poll_interval: Duration,
}

impl Default for VpcdOptions {
    fn default() -> Self {
        VpcdOptions {
            connect_timeout: Some(Duration::from_secs(30)),
            retry_interval: Duration::from_millis(100),
            reconnect: false,
            poll_interval: Duration::from_millis(100),
        }
    }
}

/// Why the bridge returned normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Ended {
    /// The stop signal was raised.
    Stopped,
    /// vpcd closed the connection (pcscd stopped) and reconnecting was not asked for.
    VpcdClosed,
    /// The card was pulled (a fault, or [`VpcdHandle::pull`]); the connection was closed.
    CardPulled,
}

/// Why the bridge failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VpcdError {
    /// vpcd did not accept a connection in time.
    #[error("could not connect to vpcd at {addr}")]
    Connect {
        /// The address tried.
        addr: SocketAddr,
        /// The last connection error.
        #[source]
        source: io::Error,
    },
    /// The connection failed while serving.
    #[error("vpcd connection failed")]
    Io(#[source] io::Error),
    /// The card image has no ATR, which vpcd cannot carry (an empty frame means removal).
    #[error("the card has an empty ATR")]
    EmptyAtr,
    /// The state file could not be written.
    #[error("could not save the card state")]
    State(#[source] StateError),
}

/// What [`read_frame`] found.
enum Frame {
    Payload(Vec<u8>),
    Closed,
    Stopped,
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn quickack(stream: &TcpStream) {
    // Linux clears quick-ACK mode by itself, so it is set again before every read. A failure
    // only costs speed.
    let _ = socket2::SockRef::from(stream).set_tcp_quickack(true);
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn quickack(_stream: &TcpStream) {}

/// Fills `buf`; `Ok(false)` when the peer closed before the first byte or stop was raised
/// while waiting for it.
fn fill(
    stream: &mut TcpStream,
    buf: &mut [u8],
    stop: &StopSignal,
    start_of_frame: bool,
) -> io::Result<Option<Frame>> {
    let mut filled = 0;
    while filled < buf.len() {
        quickack(stream);
        match stream.read(&mut buf[filled..]) {
            Ok(0) if filled == 0 && start_of_frame => return Ok(Some(Frame::Closed)),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => filled += n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                if stop.is_stopped() {
                    return Ok(Some(Frame::Stopped));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

fn read_frame(stream: &mut TcpStream, stop: &StopSignal) -> io::Result<Frame> {
    let mut len = [0u8; 2];
    if let Some(end) = fill(stream, &mut len, stop, true)? {
        return Ok(end);
    }
    let mut payload = vec![0u8; usize::from(u16::from_be_bytes(len))];
    if let Some(end) = fill(stream, &mut payload, stop, false)? {
        return Ok(end);
    }
    Ok(Frame::Payload(payload))
}

/// Writes one frame in a single call. Callers never pass an empty or oversized payload.
fn write_frame(stream: &mut TcpStream, payload: &[u8]) -> io::Result<()> {
    let len =
        u16::try_from(payload.len()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut frame = Vec::with_capacity(2 + payload.len());
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(payload);
    stream.write_all(&frame)
}

/// Connects, retrying until vpcd listens. `Ok(None)` when stopped first.
fn connect(
    addr: SocketAddr,
    options: &VpcdOptions,
    stop: &StopSignal,
) -> Result<Option<TcpStream>, VpcdError> {
    let started = Instant::now();
    loop {
        if stop.is_stopped() {
            return Ok(None);
        }
        match TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
            Ok(stream) => return Ok(Some(stream)),
            Err(source) => {
                if options
                    .connect_timeout
                    .is_some_and(|limit| started.elapsed() >= limit)
                {
                    return Err(VpcdError::Connect { addr, source });
                }
                std::thread::sleep(options.retry_interval);
            }
        }
    }
}

/// Serves one connection until it ends.
fn serve(
    stream: &mut TcpStream,
    card: &SimCard,
    options: &VpcdOptions,
    stop: &StopSignal,
    pulled: &AtomicBool,
) -> Result<Ended, VpcdError> {
    stream
        .set_read_timeout(Some(options.poll_interval.max(Duration::from_millis(1))))
        .map_err(VpcdError::Io)?;
    // Replies are single writes already; no reason to hold small segments back.
    let _ = stream.set_nodelay(true);
    loop {
        let read = read_frame(stream, stop);
        // A pull shuts the socket down under the read: whatever the read saw, the card left.
        if pulled.load(Ordering::SeqCst) {
            return Ok(Ended::CardPulled);
        }
        let frame = match read {
            Ok(Frame::Payload(frame)) => frame,
            Ok(Frame::Closed) => return Ok(Ended::VpcdClosed),
            Ok(Frame::Stopped) => return Ok(Ended::Stopped),
            Err(e) if is_disconnect(&e) => return Ok(Ended::VpcdClosed),
            Err(e) => return Err(VpcdError::Io(e)),
        };
        let written = match frame.as_slice() {
            [0x00] => {
                card.with_card(Card::power_off);
                Ok(())
            }
            [0x01] => {
                card.with_card(Card::power_on);
                Ok(())
            }
            [0x02] => {
                card.with_card(Card::reset);
                Ok(())
            }
            [0x04] => write_frame(stream, &card.with_card(|c| c.atr().to_vec())),
            // vpcd sends no other 1-byte or empty message; nothing to answer.
            [_] | [] => Ok(()),
            apdu => {
                let exchange = card.exchange(apdu, false);
                if !exchange.latency.is_zero() {
                    std::thread::sleep(exchange.latency);
                }
                if let Some(error) = exchange.state_error {
                    return Err(VpcdError::State(error));
                }
                match exchange.delivered {
                    Delivered::Response(mut response) => {
                        // The engine never answers more; keep the SW if it somehow did.
                        if response.len() > MAX_FRAME {
                            let sw = response.split_off(response.len() - 2);
                            response.truncate(MAX_FRAME - 2);
                            response.extend_from_slice(&sw);
                        }
                        write_frame(stream, &response)
                    }
                    // Pulled or tag lost: close without answering.
                    Delivered::Removed | Delivered::Reset => {
                        let _ = stream.shutdown(Shutdown::Both);
                        return Ok(Ended::CardPulled);
                    }
                }
            }
        };
        match written {
            Ok(()) => {}
            Err(_) if pulled.load(Ordering::SeqCst) => return Ok(Ended::CardPulled),
            Err(e) if is_disconnect(&e) => return Ok(Ended::VpcdClosed),
            Err(e) => return Err(VpcdError::Io(e)),
        }
    }
}

fn is_disconnect(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::NotConnected
    )
}

/// Shared between a running bridge and its handle.
#[derive(Default)]
struct Connection {
    stream: Mutex<Option<TcpStream>>,
    pulled: AtomicBool,
}

fn run_with(
    addr: SocketAddr,
    card: &SimCard,
    options: &VpcdOptions,
    stop: &StopSignal,
    connection: &Connection,
) -> Result<Ended, VpcdError> {
    if card.with_card(|c| c.atr().is_empty()) {
        return Err(VpcdError::EmptyAtr);
    }
    loop {
        let Some(mut stream) = connect(addr, options, stop)? else {
            return Ok(Ended::Stopped);
        };
        if let Ok(clone) = stream.try_clone() {
            *connection
                .stream
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(clone);
        }
        let ended = serve(&mut stream, card, options, stop, &connection.pulled);
        *connection
            .stream
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
        // A card leaves the reader by closing its connection.
        let _ = stream.shutdown(Shutdown::Both);
        if matches!(ended, Ok(Ended::CardPulled)) {
            card.remove();
        }
        match ended {
            Ok(Ended::VpcdClosed) if options.reconnect && !stop.is_stopped() => {
                // pcscd went away; the card loses power with it.
                card.with_card(Card::power_off);
                std::thread::sleep(options.retry_interval);
            }
            other => return other,
        }
    }
}

/// Connects `card` to vpcd at `addr` and serves it on this thread until stopped, until vpcd
/// closes the connection (unless [`VpcdOptions::reconnect`]) or until the card is pulled.
///
/// # Errors
/// [`VpcdError::Connect`] when vpcd does not listen within [`VpcdOptions::connect_timeout`],
/// [`VpcdError::Io`] for a broken connection, [`VpcdError::State`] when the state file cannot be
/// written, [`VpcdError::EmptyAtr`].
pub fn run(
    addr: SocketAddr,
    card: &SimCard,
    options: &VpcdOptions,
    stop: &StopSignal,
) -> Result<Ended, VpcdError> {
    run_with(addr, card, options, stop, &Connection::default())
}

/// A bridge running on its own thread.
pub struct VpcdHandle {
    stop: StopSignal,
    connection: Arc<Connection>,
    /// Taken by [`VpcdHandle::join`].
    thread: Option<JoinHandle<Result<Ended, VpcdError>>>,
}

impl core::fmt::Debug for VpcdHandle {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("VpcdHandle")
            .field("stopped", &self.stop.is_stopped())
            .field("connected", &self.is_connected())
            .finish_non_exhaustive()
    }
}

/// Runs [`run`] on a new thread.
///
/// # Errors
/// The I/O error when no thread can be started.
pub fn spawn(addr: SocketAddr, card: SimCard, options: VpcdOptions) -> io::Result<VpcdHandle> {
    let stop = StopSignal::new();
    let connection = Arc::new(Connection::default());
    let thread = {
        let stop = stop.clone();
        let connection = Arc::clone(&connection);
        std::thread::Builder::new()
            .name(format!("mynacard-sim-vpcd-{}", addr.port()))
            .spawn(move || run_with(addr, &card, &options, &stop, &connection))?
    };
    Ok(VpcdHandle {
        stop,
        connection,
        thread: Some(thread),
    })
}

impl VpcdHandle {
    /// Whether the bridge holds a connection to vpcd now.
    pub fn is_connected(&self) -> bool {
        self.connection
            .stream
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }

    /// Asks the bridge to stop (it closes the connection: to pcscd the card is removed).
    pub fn stop(&self) {
        self.stop.stop();
    }

    /// Pulls the card now: the connection is closed at once, even in the middle of an exchange,
    /// and the bridge ends with [`Ended::CardPulled`].
    pub fn pull(&self) {
        self.connection.pulled.store(true, Ordering::SeqCst);
        self.stop.stop();
        if let Some(stream) = self
            .connection
            .stream
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
        {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    /// Waits for the bridge to end.
    ///
    /// # Errors
    /// The bridge's error; [`VpcdError::Io`] if its thread panicked.
    pub fn join(mut self) -> Result<Ended, VpcdError> {
        // Always there: only this method, which takes the handle, empties it.
        let Some(thread) = self.thread.take() else {
            return Ok(Ended::Stopped);
        };
        thread.join().unwrap_or_else(|_| {
            Err(VpcdError::Io(io::Error::other(
                "vpcd bridge thread panicked",
            )))
        })
    }
}

/// Dropping the handle without [`VpcdHandle::join`] stops the bridge without waiting for it: a
/// card is never left in the reader by a handle nobody holds (a test that panicked, say).
impl Drop for VpcdHandle {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.stop.stop();
        }
    }
}
