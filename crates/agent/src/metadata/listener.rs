//! A listener that lets each source address hold only a few connections at once, so one
//! guest that opens connections and keeps them open cannot shut out the others that share
//! its router or network.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// Connections one source address may hold open at once; more are closed on accept.
pub const CONNECTIONS_PER_SOURCE: usize = 16;

type OpenCounts = Arc<Mutex<HashMap<IpAddr, usize>>>;

pub struct CappedListener {
    inner: TcpListener,
    open: OpenCounts,
}

impl CappedListener {
    pub fn new(inner: TcpListener) -> Self {
        Self {
            inner,
            open: OpenCounts::default(),
        }
    }

    /// Counts a connection from `ip`, unless that source already holds its share.
    fn admit(&self, ip: IpAddr) -> Option<Slot> {
        let mut open = self.open.lock().ok()?;
        let count = open.entry(ip).or_insert(0);
        if *count >= CONNECTIONS_PER_SOURCE {
            return None;
        }
        *count += 1;
        Some(Slot {
            ip,
            open: self.open.clone(),
        })
    }
}

/// The source address of a connection, as the handlers see it.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

impl Connected<IncomingStream<'_, CappedListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, CappedListener>) -> Self {
        Peer(*stream.remote_addr())
    }
}

impl Listener for CappedListener {
    type Io = CappedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.inner.accept().await {
                Ok((stream, addr)) => match self.admit(canonical(addr.ip())) {
                    Some(slot) => {
                        return (
                            CappedStream {
                                stream,
                                _slot: slot,
                            },
                            addr,
                        );
                    }
                    None => tracing::debug!(%addr, "metadata connection refused: too many open"),
                },
                // Out of file descriptors and the like: wait instead of spinning.
                Err(error) => {
                    tracing::warn!(%error, "metadata service cannot accept");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// An IPv4-mapped IPv6 peer (a dual-stack socket) is its IPv4 address.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// A connection's place in its source's count, given back when the connection closes.
struct Slot {
    ip: IpAddr,
    open: OpenCounts,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut open) = self.open.lock()
            && let Some(count) = open.get_mut(&self.ip)
        {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

pub struct CappedStream {
    stream: TcpStream,
    _slot: Slot,
}

impl AsyncRead for CappedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for CappedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn each_source_holds_a_bounded_share() {
        let inner = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let listener = CappedListener::new(inner);
        let a: IpAddr = "10.0.0.5".parse().expect("ip");
        let b: IpAddr = "10.0.0.6".parse().expect("ip");
        let held: Vec<Slot> = (0..CONNECTIONS_PER_SOURCE)
            .map(|_| listener.admit(a).expect("within the share"))
            .collect();
        assert!(listener.admit(a).is_none(), "one over the share");
        assert!(
            listener.admit(b).is_some(),
            "another source is not affected"
        );
        drop(held);
        assert!(
            listener.admit(a).is_some(),
            "closed connections give their place back"
        );
        assert_eq!(
            canonical("::ffff:10.0.0.5".parse().expect("ip")),
            a,
            "a mapped address counts as its IPv4 address"
        );
    }
}
