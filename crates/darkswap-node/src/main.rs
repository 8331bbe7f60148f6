//! `darkswap-node`: run a DarkSwap node, a local demo network, or talk to a running node.

use clap::{Args, Parser, Subcommand};
use darkswap_node::{
    api, client, demo, metrics, web, DEFAULT_API_ADDR, DEFAULT_METRICS_ADDR, DEFAULT_P2P_PORT,
    DEFAULT_WEBRTC_DIRECT_PORT, DEFAULT_WEB_ADDR,
};
use darkswap_p2p::{
    auth::{AuthManagerConfig, AuthMethod},
    libp2p::{multiaddr::Protocol, Multiaddr, PeerId},
    network::{Network, NetworkConfig, NetworkEvent, RelayServerConfig},
    protocol::Message,
    relay_discovery::RelayDiscoveryConfig,
    signaling::{SignalingServer, SignalingServerConfig},
};
use std::{path::PathBuf, process::ExitCode, time::Duration};

#[derive(Parser, Debug)]
#[command(name = "darkswap-node", version, about = "DarkSwap P2P node", args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a node (the default when no subcommand is given).
    Run(Box<RunArgs>),
    /// Start a small local network in this process, show gossip, sync and a trade, then exit.
    Demo {
        /// Nodes in the line (at least 3).
        #[arg(long, default_value_t = 4)]
        nodes: usize,
        /// Orders each of the first two nodes posts.
        #[arg(long, default_value_t = 3)]
        orders: usize,
    },
    /// Post an order through a running node.
    Post {
        /// buy or sell (the base asset).
        #[arg(long)]
        side: String,
        /// Base asset: btc, rune:<block>:<tx> or alkane:<block>:<tx>.
        #[arg(long)]
        base: String,
        /// Quote asset.
        #[arg(long, default_value = "btc")]
        quote: String,
        /// Amount of base, in base units.
        #[arg(long)]
        amount: String,
        /// Price: quote base units per 10^8 base units.
        #[arg(long)]
        price: String,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: u64,
        #[command(flatten)]
        api: ApiArg,
    },
    /// Show the order book of a running node.
    Orders {
        #[command(flatten)]
        api: ApiArg,
    },
    /// Cancel one of a running node's own orders.
    Cancel {
        /// Hex order id.
        id: String,
        #[command(flatten)]
        api: ApiArg,
    },
    /// Make a running node dial a peer (directly, or through a relay with a /p2p-circuit address).
    Dial {
        /// The multiaddr, ending in /p2p/<peer id>.
        addr: String,
        #[command(flatten)]
        api: ApiArg,
    },
    /// List a running node's connections, direct and relayed.
    Connections {
        #[command(flatten)]
        api: ApiArg,
    },
    /// Show a running node's peer id, addresses, peers and counters.
    Status {
        #[command(flatten)]
        api: ApiArg,
    },
}

#[derive(Args, Debug, Clone)]
struct ApiArg {
    /// The node's control API.
    #[arg(long = "api", env = "DARKSWAP_API", default_value = "http://127.0.0.1:9091")]
    url: String,
}

#[derive(Args, Debug, Clone)]
struct RunArgs {
    /// Addresses to listen on (default: TCP and QUIC on port 9000, all interfaces).
    #[arg(long = "listen", value_name = "MULTIADDR")]
    listen: Vec<Multiaddr>,
    /// Peers to join: multiaddrs ending in /p2p/<peer id>.
    #[arg(long = "bootstrap", value_name = "MULTIADDR")]
    bootstrap: Vec<Multiaddr>,
    /// Relays to reserve a slot on: multiaddrs ending in /p2p/<peer id>.
    #[arg(long = "relay-peer", value_name = "MULTIADDR")]
    relay_peers: Vec<Multiaddr>,
    /// Identity key file, created on first run (default: a new random identity each run).
    #[arg(long = "identity", value_name = "FILE", env = "DARKSWAP_IDENTITY")]
    identity: Option<PathBuf>,
    /// Gossip topics (default: darkswap/orderbook/v1 and darkswap/trade/v1).
    #[arg(long = "topic", value_name = "TOPIC")]
    topics: Vec<String>,
    /// Control API address (loopback unless you mean it); port 0 picks a free one.
    #[arg(long = "api", value_name = "ADDR", default_value = DEFAULT_API_ADDR)]
    api: String,
    /// Seconds allowed for a connection to be established.
    #[arg(long, default_value_t = 30)]
    connection_timeout: u64,
    /// Outbound peers to keep, dialled from those the DHT names (spread over address ranges).
    #[arg(long, default_value_t = 8)]
    target_peers: usize,
    /// Connections to keep in all; beyond it, connections nothing depends on are closed (a
    /// bootstrap node stays a door, not a hub). 0: no limit but the resource limits.
    #[arg(long, default_value_t = 40)]
    max_peers: usize,
    /// Relay mode: serve circuit relay v2 reservations and circuits (with DarkSwap's limits) and
    /// announce this node as a relay in the DHT.
    #[arg(long)]
    relay: bool,
    /// An address peers can reach this node at (needed by a relay listening on 0.0.0.0).
    #[arg(long = "external-address", value_name = "MULTIADDR")]
    external: Vec<Multiaddr>,
    /// Let AutoNAT probe and serve private addresses too (private networks, labs); by default it
    /// only considers global IPs.
    #[arg(long)]
    autonat_any_ip: bool,
    /// A file holding the network's shared key: peers prove membership with it (HMAC challenges),
    /// and this node authenticates to its relays with it before reserving.
    #[arg(long = "shared-key-file", value_name = "FILE", env = "DARKSWAP_SHARED_KEY_FILE")]
    shared_key_file: Option<PathBuf>,
    /// Serve only authenticated peers: relay reservations and circuits, and trade messages.
    #[arg(long)]
    require_auth: bool,
    /// Find peers and relays on the local network with mDNS (multicast on every interface).
    #[arg(long)]
    mdns: bool,
    /// Refuse this peer everywhere (repeatable).
    #[arg(long = "ban", value_name = "PEER_ID")]
    banned: Vec<PeerId>,
    /// Trust this peer without a challenge (repeatable).
    #[arg(long = "trust", value_name = "PEER_ID")]
    trusted: Vec<PeerId>,
    /// Also run the WebRTC signaling server, on ADDR (default 127.0.0.1:9001), at
    /// ws://ADDR/signaling; the node itself registers there unless --webrtc-signaling says otherwise.
    #[arg(long = "signaling-server", value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:9001")]
    signaling_server: Option<std::net::SocketAddr>,
    /// Reach and be reached by peers through the WebRTC signaling server at URL
    /// (ws://host:9001/signaling): the node listens on /webrtc there, and peers dial /webrtc/p2p/<id>.
    #[arg(long = "webrtc-signaling", value_name = "URL")]
    webrtc_signaling: Option<String>,
    /// Serve Prometheus metrics at http://ADDR/metrics; `off` disables it.
    #[arg(long = "metrics", value_name = "ADDR|off", default_value = DEFAULT_METRICS_ADDR)]
    metrics: String,
    /// Serve the demo page (a browser node bootstrapping to this one) on ADDR; `off` disables it.
    #[arg(long = "web", value_name = "ADDR|off", default_value = DEFAULT_WEB_ADDR)]
    web: String,
    /// Directory of the built wasm package (`./scripts/build-web.sh` writes web/pkg).
    #[arg(long = "web-pkg", value_name = "DIR", env = "DARKSWAP_WEB_PKG")]
    web_pkg: Option<PathBuf>,
}

/// The authentication settings the flags ask for, if any.
fn auth_config(args: &RunArgs) -> Result<Option<AuthManagerConfig>, Box<dyn std::error::Error>> {
    if args.shared_key_file.is_none() && !args.require_auth && args.banned.is_empty() && args.trusted.is_empty() {
        return Ok(None);
    }
    let shared_key = match &args.shared_key_file {
        Some(path) => {
            let key = std::fs::read(path).map_err(|e| format!("shared key file {}: {e}", path.display()))?;
            // A trailing newline from `echo key > file` is not part of the key.
            let key = key.strip_suffix(b"\n").unwrap_or(&key).to_vec();
            Some(key)
        }
        None => None,
    };
    Ok(Some(AuthManagerConfig {
        auth_method: if shared_key.is_some() { AuthMethod::SharedKey } else { AuthMethod::ChallengeResponse },
        shared_key,
        require_auth: args.require_auth,
        banned_peers: args.banned.iter().copied().collect(),
        trusted_peers: args.trusted.iter().copied().collect(),
        ..AuthManagerConfig::default()
    }))
}

async fn run_node(args: RunArgs) -> Result<(), Box<dyn std::error::Error>> {
    let mut config = NetworkConfig {
        bootstrap_peers: args.bootstrap.clone(),
        relay_peers: args.relay_peers.clone(),
        connection_timeout: Duration::from_secs(args.connection_timeout),
        ..NetworkConfig::default()
    };
    if !args.topics.is_empty() {
        config.topics = args.topics.clone();
    }
    let mut builder = Network::builder(config).peering(darkswap_p2p::network::PeeringConfig {
        target_outbound: args.target_peers,
        max_peers: args.max_peers,
        ..Default::default()
    });
    if let Some(path) = &args.identity {
        builder = builder.identity_file(path);
    }
    if args.relay {
        builder = builder.relay_server(RelayServerConfig::default());
    }
    for addr in &args.external {
        builder = builder.external_address(addr.clone());
    }
    if args.autonat_any_ip {
        builder = builder.autonat_global_only(false);
    }
    if args.mdns {
        let bootstrap_relays = args
            .relay_peers
            .iter()
            .filter_map(|a| match a.iter().last() {
                Some(Protocol::P2p(p)) => Some((p, a.clone())),
                _ => None,
            })
            .collect();
        builder = builder.relay_discovery(RelayDiscoveryConfig {
            bootstrap_relays,
            enable_mdns_discovery: true,
            ..RelayDiscoveryConfig::default()
        });
    }
    if let Some(auth) = auth_config(&args)? {
        builder = builder.auth(auth);
    }
    let signaling = match args.signaling_server {
        Some(listen) => Some(SignalingServer::bind(SignalingServerConfig { listen, ..Default::default() }).await?),
        None => None,
    };
    if let Some(server) = &signaling {
        println!("signaling: {}", server.url());
    }
    let webrtc_url = args.webrtc_signaling.clone().or_else(|| signaling.as_ref().map(|s| s.url()));
    if let Some(url) = &webrtc_url {
        builder = builder.webrtc_signaling(url.clone());
    }
    let mut network = builder.build().await?;
    let mut listen = if args.listen.is_empty() {
        vec![
            format!("/ip4/0.0.0.0/tcp/{DEFAULT_P2P_PORT}").parse()?,
            format!("/ip4/0.0.0.0/udp/{DEFAULT_P2P_PORT}/quic-v1").parse()?,
            format!("/ip4/0.0.0.0/udp/{DEFAULT_WEBRTC_DIRECT_PORT}/webrtc-direct").parse()?,
        ]
    } else {
        args.listen
    };
    if webrtc_url.is_some() {
        listen.push("/webrtc".parse()?);
    }
    let peer_id = network.local_peer_id();
    println!("peer id: {peer_id}");
    let mut printed = Vec::new();
    for addr in listen {
        network.listen_on_addr(addr).await?;
        // A wildcard address binds on every interface; print each address bound so far.
        for bound in network.listen_addrs() {
            if !printed.contains(&bound) {
                println!("listening: {bound}/p2p/{peer_id}");
                printed.push(bound);
            }
        }
    }
    let listener = tokio::net::TcpListener::bind(&args.api).await?;
    println!("api: http://{}", listener.local_addr()?);
    let router = api::router(network.handle());
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!(error = %e, "control API stopped");
        }
    });
    if let Some(server) = &signaling {
        server.register_metrics(network.metrics().registry());
    }
    if args.metrics != "off" {
        let listener = tokio::net::TcpListener::bind(&args.metrics)
            .await
            .map_err(|e| format!("--metrics {}: {e}", args.metrics))?;
        println!("metrics: http://{}/metrics", listener.local_addr()?);
        let router = metrics::router(network.metrics());
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router).await {
                tracing::error!(error = %e, "metrics endpoint stopped");
            }
        });
    }
    if args.web != "off" {
        let listener =
            tokio::net::TcpListener::bind(&args.web).await.map_err(|e| format!("--web {}: {e}", args.web))?;
        println!("web: http://{}/", listener.local_addr()?);
        let pkg = args.web_pkg.clone().unwrap_or_else(web::default_pkg_dir);
        let router = web::router(network.handle(), pkg, args.relay, webrtc_url.clone());
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router).await {
                tracing::error!(error = %e, "web page server stopped");
            }
        });
    }
    loop {
        let event = tokio::select! {
            e = network.next_event() => e,
            _ = tokio::signal::ctrl_c() => None,
        };
        match event {
            None => break,
            Some(NetworkEvent::MessageReceived { peer_id, topic, message }) => match &message {
                Message::OrderAnnounce(o) => tracing::info!(
                    from = %peer_id, id = %o.id, maker = %o.maker, side = %o.side, base = %o.base,
                    quote = %o.quote, amount = %o.amount, price = %o.price, "order"
                ),
                other => tracing::info!(from = %peer_id, %topic, kind = other.kind(), "message"),
            },
            Some(other) => tracing::info!(event = ?other, "network"),
        }
    }
    println!("shutting down");
    network.shutdown().await?;
    if let Some(server) = signaling {
        server.shutdown().await;
    }
    Ok(())
}

fn print_orders(orders: &[api::OrderView]) {
    println!("{:<32}  {:<4}  {:>14}  {:<18}  {:>14}  {:<18}  maker", "id", "side", "amount", "base", "price", "quote");
    for o in orders {
        println!(
            "{:<32}  {:<4}  {:>14}  {:<18}  {:>14}  {:<18}  {}",
            o.id, o.side, o.amount, o.base, o.price, o.quote, o.maker
        );
    }
    println!("{} live order(s)", orders.len());
}

fn init_tracing(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Run(Box::new(cli.run)));
    // The demo prints its own story; a node logs what it sees.
    // (Connections torn down together at the demo's end make yamux warn about broken pipes.)
    // str0m warns about bookkeeping on every channel close ("Drop BufferedAmountLow"), which
    // tells an operator nothing; its errors still show.
    init_tracing(if matches!(command, Command::Run(_)) {
        "info,libp2p=warn,str0m=error"
    } else {
        "warn,yamux=error,str0m=error"
    });
    let result: Result<(), Box<dyn std::error::Error>> = match command {
        Command::Run(args) => runtime().map_err(Into::into).and_then(|rt| rt.block_on(run_node(*args))),
        Command::Demo { nodes, orders } => runtime().map_err(Into::into).and_then(|rt| {
            let summary = rt.block_on(demo::run(nodes, orders))?;
            println!("{summary}");
            Ok(())
        }),
        Command::Post { side, base, quote, amount, price, ttl, api } => {
            let req = api::PostOrder { side, base, quote, amount, price, ttl_secs: ttl, terms_hex: None };
            match req.to_draft() {
                Err(e) => Err(e.into()),
                Ok(_) => client::post(&api.url, &req).map(|o| print_orders(&[o])).map_err(Into::into),
            }
        }
        Command::Orders { api } => client::orders(&api.url).map(|o| print_orders(&o)).map_err(Into::into),
        Command::Cancel { id, api } => {
            client::cancel(&api.url, &id).map(|()| println!("cancelled {id}")).map_err(Into::into)
        }
        Command::Dial { addr, api } => {
            client::dial(&api.url, &addr).map(|r| println!("connected to {}", r.peer_id)).map_err(Into::into)
        }
        Command::Connections { api } => client::connections(&api.url)
            .map(|list| {
                for c in &list {
                    let kind = if c.relayed { "relayed" } else { "direct" };
                    let dir = if c.outbound { "out" } else { "in" };
                    println!("{}  {kind:<7}  {dir:<3}  {}", c.peer_id, c.addr);
                }
                println!("{} connection(s)", list.len());
            })
            .map_err(Into::into),
        Command::Status { api } => client::status(&api.url)
            .map(|s| println!("{}", serde_json::to_string_pretty(&s).unwrap_or_default()))
            .map_err(Into::into),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
