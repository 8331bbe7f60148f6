//! The TCP transport of the lab's rust-libp2p programs.

use futures::{future::BoxFuture, FutureExt};
use libp2p::{
    core::transport::{DialOpts, ListenerId, PortUse, TransportError, TransportEvent},
    tcp, Multiaddr, Transport,
};
use std::{
    pin::Pin,
    task::{Context, Poll},
};

/// TCP that dials from a fresh port: Shadow refuses to bind a dial to the listening port
/// (`SO_REUSEPORT`), and plain rust-libp2p gives up on such a dial.
pub struct FreshPort(tcp::tokio::Transport);

impl FreshPort {
    /// TCP with Nagle off, dialing from fresh ports.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        Self(tcp::tokio::Transport::new(tcp::Config::default().nodelay(true)))
    }
}

impl Transport for FreshPort {
    type Output = tcp::tokio::TcpStream;
    type Error = std::io::Error;
    type ListenerUpgrade = <tcp::tokio::Transport as Transport>::ListenerUpgrade;
    type Dial = BoxFuture<'static, Result<Self::Output, Self::Error>>;

    fn listen_on(&mut self, id: ListenerId, addr: Multiaddr) -> Result<(), TransportError<Self::Error>> {
        self.0.listen_on(id, addr)
    }
    fn remove_listener(&mut self, id: ListenerId) -> bool {
        self.0.remove_listener(id)
    }
    fn dial(&mut self, addr: Multiaddr, opts: DialOpts) -> Result<Self::Dial, TransportError<Self::Error>> {
        Ok(self.0.dial(addr, DialOpts { port_use: PortUse::New, ..opts })?.boxed())
    }
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<TransportEvent<Self::ListenerUpgrade, Self::Error>> {
        Pin::new(&mut self.get_mut().0).poll(cx)
    }
}
