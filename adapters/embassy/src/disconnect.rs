//! Why a connection ended, and the checks on what a transport's `read` and `write` return that
//! both drivers (async and blocking) share.
//!
//! The `embedded_io` traits promise that `read` and `write` return at most the buffer's length
//! and that `write` returns `Ok(0)` only for an empty buffer. A transport that breaks those
//! promises (a buggy TLS layer, a UART bridge, a hand-written socket wrapper) must not stall
//! the driver, spin in it, or make it panic: the connection ends with a [`Disconnect`] that
//! says what went wrong, and the session reconnects as after any other loss.

use core::fmt;

use amps_core::session::TransportClosed;

/// Why the last connection ended ([`Stats::last_disconnect`](crate::Stats::last_disconnect)).
///
/// Every variant but [`Disconnect::Session`] is a loss the session is told of
/// ([`TransportClosed`]): it reports `Disconnected` and reconnects with its backoff policy,
/// replaying unpersisted publishes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Disconnect {
    /// The session ended the connection: the application's `disconnect` or `close`, heartbeat
    /// silence, a failed or timed-out logon, undecodable input (its events say which).
    Session,
    /// The peer closed the connection: `read` returned `Ok(0)` (end of stream).
    PeerClosed,
    /// `read` (or `read_ready`) returned an error.
    ReadFailed,
    /// `write` or `flush` returned an error.
    WriteFailed,
    /// `write` accepted nothing of a non-empty buffer (`Ok(0)`, where the `embedded_io`
    /// traits ask for an error).
    WriteZero,
    /// `write` claimed to have written more bytes than it was given.
    WriteOverrun,
    /// `read` claimed to have read more bytes than the buffer holds.
    ReadOverrun,
    /// Input the session neither took nor refused (a frame its receive buffer cannot hold).
    Stuck,
}

impl Disconnect {
    /// What the session is told, or `None` when the session ended the connection itself.
    pub(crate) fn transport_closed(self) -> Option<TransportClosed> {
        match self {
            Disconnect::Session => None,
            Disconnect::PeerClosed => Some(TransportClosed::PeerClosed),
            _ => Some(TransportClosed::Error),
        }
    }
}

impl fmt::Display for Disconnect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Disconnect::Session => "the session ended the connection",
            Disconnect::PeerClosed => "the peer closed the connection",
            Disconnect::ReadFailed => "the transport's read failed",
            Disconnect::WriteFailed => "the transport's write or flush failed",
            Disconnect::WriteZero => "the transport's write accepted 0 bytes",
            Disconnect::WriteOverrun => {
                "the transport's write claimed more bytes than it was given"
            }
            Disconnect::ReadOverrun => "the transport's read claimed more bytes than the buffer",
            Disconnect::Stuck => "input the session neither took nor refused",
        })
    }
}

impl core::error::Error for Disconnect {}

/// Check what `write` returned for `offered` bytes (`offered > 0`): the bytes written.
pub(crate) fn check_write(n: usize, offered: usize) -> Result<usize, Disconnect> {
    match n {
        0 => Err(Disconnect::WriteZero),
        n if n > offered => Err(Disconnect::WriteOverrun),
        n => Ok(n),
    }
}

/// Check what `read` returned into a buffer of `capacity` bytes (`capacity > 0`): the bytes
/// read.
pub(crate) fn check_read(n: usize, capacity: usize) -> Result<usize, Disconnect> {
    match n {
        0 => Err(Disconnect::PeerClosed),
        n if n > capacity => Err(Disconnect::ReadOverrun),
        n => Ok(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_are_checked() {
        assert_eq!(check_write(3, 3), Ok(3));
        assert_eq!(check_write(1, 3), Ok(1));
        assert_eq!(check_write(0, 3), Err(Disconnect::WriteZero));
        assert_eq!(check_write(4, 3), Err(Disconnect::WriteOverrun));
    }

    #[test]
    fn reads_are_checked() {
        assert_eq!(check_read(8, 8), Ok(8));
        assert_eq!(check_read(1, 8), Ok(1));
        assert_eq!(check_read(0, 8), Err(Disconnect::PeerClosed));
        assert_eq!(check_read(9, 8), Err(Disconnect::ReadOverrun));
    }

    #[test]
    fn only_transport_losses_are_reported_to_the_session() {
        assert_eq!(Disconnect::Session.transport_closed(), None);
        assert_eq!(
            Disconnect::PeerClosed.transport_closed(),
            Some(TransportClosed::PeerClosed)
        );
        for d in [
            Disconnect::ReadFailed,
            Disconnect::WriteFailed,
            Disconnect::WriteZero,
            Disconnect::WriteOverrun,
            Disconnect::ReadOverrun,
            Disconnect::Stuck,
        ] {
            assert_eq!(d.transport_closed(), Some(TransportClosed::Error), "{d}");
        }
    }
}
