//! TCP dials that fall back to a fresh port when the listening port cannot be reused.
//!
//! rust-libp2p dials TCP from the listening port by default (`PortUse::Reuse`), so that NATs map
//! one external port for both directions and hole punching works. Binding a second socket to
//! the listening port needs `SO_REUSEPORT`, which some environments refuse with `EADDRINUSE`:
//! sandboxes, the Shadow network simulator, and any host where another socket without the
//! option holds the port. libp2p's TCP transport gives up on such a dial, and since Kademlia
//! and the peer manager dial with the default, a node there connected only to the peers it was
//! told about at start. This wrapper retries such a dial once from an ephemeral port, through a
//! second transport that listens on nothing.

use futures::{future::BoxFuture, FutureExt};
use libp2p::{
    core::transport::{DialOpts, ListenerId, PortUse, Transport, TransportError, TransportEvent},
    Multiaddr,
};
use std::{
    io,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
};

/// `T` whose port-reusing dials retry from a fresh port when the bind is refused.
pub struct PortReuseFallback<T> {
    inner: T,
    fresh: Arc<Mutex<T>>,
}

impl<T> PortReuseFallback<T> {
    /// Wraps `inner`; `fresh` is a second transport of the same kind that never listens.
    pub fn new(inner: T, fresh: T) -> Self {
        Self { inner, fresh: Arc::new(Mutex::new(fresh)) }
    }
}

impl<T> Transport for PortReuseFallback<T>
where
    T: Transport<Error = io::Error> + Unpin + Send + 'static,
    T::Output: Send,
    T::Dial: Send + 'static,
{
    type Output = T::Output;
    type Error = io::Error;
    type ListenerUpgrade = T::ListenerUpgrade;
    type Dial = BoxFuture<'static, Result<T::Output, io::Error>>;

    fn listen_on(&mut self, id: ListenerId, addr: Multiaddr) -> Result<(), TransportError<io::Error>> {
        self.inner.listen_on(id, addr)
    }

    fn remove_listener(&mut self, id: ListenerId) -> bool {
        self.inner.remove_listener(id)
    }

    fn dial(&mut self, addr: Multiaddr, opts: DialOpts) -> Result<Self::Dial, TransportError<io::Error>> {
        let first = self.inner.dial(addr.clone(), opts)?;
        if opts.port_use != PortUse::Reuse {
            return Ok(first.boxed());
        }
        let fresh = self.fresh.clone();
        Ok(async move {
            match first.await {
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                    tracing::debug!(%addr, "listening port not reusable for a dial; dialing from a fresh port");
                    let retry = fresh
                        .lock()
                        .unwrap_or_else(|poisoned| poisoned.into_inner())
                        .dial(addr, DialOpts { port_use: PortUse::New, ..opts })
                        .map_err(|e| match e {
                            TransportError::Other(e) => e,
                            TransportError::MultiaddrNotSupported(a) => {
                                io::Error::new(io::ErrorKind::Unsupported, format!("{a} not supported"))
                            }
                        })?;
                    retry.await
                }
                other => other,
            }
        }
        .boxed())
    }

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<TransportEvent<Self::ListenerUpgrade, io::Error>> {
        Pin::new(&mut self.get_mut().inner).poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::future::poll_fn;
    use libp2p::core::Endpoint;
    use std::time::Duration;

    fn tcp() -> libp2p::tcp::tokio::Transport {
        libp2p::tcp::tokio::Transport::new(libp2p::tcp::Config::default())
    }

    /// A real refusal: the transport listens on 127.0.0.1:P, and a plain socket without
    /// `SO_REUSEPORT` holds 127.0.0.3:P, so binding a dial to 0.0.0.0:P fails with
    /// `EADDRINUSE`. The plain transport gives up; the wrapper connects from a fresh port.
    #[tokio::test]
    async fn a_refused_port_reuse_dial_connects_from_a_fresh_port() {
        let target = std::net::TcpListener::bind("127.0.0.2:0").expect("a listener on 127.0.0.2");
        let target: Multiaddr = format!("/ip4/127.0.0.2/tcp/{}", target.local_addr().unwrap().port()).parse().unwrap();
        let reuse = DialOpts { role: Endpoint::Dialer, port_use: PortUse::Reuse };

        for wrapped in [false, true] {
            let mut t = PortReuseFallback::new(tcp(), tcp());
            t.listen_on(ListenerId::next(), "/ip4/127.0.0.1/tcp/0".parse().unwrap()).unwrap();
            let wait = poll_fn(|cx| Pin::new(&mut t).poll(cx));
            let port = match tokio::time::timeout(Duration::from_secs(5), wait).await.expect("a listen address") {
                TransportEvent::NewAddress { listen_addr, .. } => match listen_addr.iter().nth(1) {
                    Some(libp2p::multiaddr::Protocol::Tcp(p)) => p,
                    other => panic!("no TCP port in {listen_addr}: {other:?}"),
                },
                other => panic!("expected the listen address, got {other:?}"),
            };
            let _holder = std::net::TcpListener::bind(("127.0.0.3", port)).expect("the port on another address");
            let dial = if wrapped {
                t.dial(target.clone(), reuse).unwrap()
            } else {
                t.inner.dial(target.clone(), reuse).unwrap().boxed()
            };
            let result = tokio::time::timeout(Duration::from_secs(5), dial).await.expect("the dial settles");
            match (wrapped, result) {
                (false, Err(e)) => assert_eq!(e.kind(), io::ErrorKind::AddrInUse, "the refusal this wrapper handles"),
                (false, Ok(_)) => panic!("binding to the held port was expected to fail"),
                (true, r) => assert!(r.is_ok(), "the fallback connects: {:?}", r.err()),
            }
        }
    }
}
