//! Shared helpers for the examples: where to connect.
//!
//! Every example talks to the server named by the environment variable `AMPS_URI` (for
//! example `tcp://127.0.0.1:9007/amps/json`), or, when it is not set, to an `amps-broker`
//! started in-process on a free loopback port. A server named by `AMPS_URI` must have the
//! topics the example documents. Examples that need the in-process broker's fault hooks (to
//! refuse a logon, delay acks, silence heartbeats) skip those steps with such a server.

use amps_broker::{Config, ServerHandle};

/// Where an example connects, keeping an in-process broker alive while it runs.
pub struct Server {
    /// The connection string.
    pub uri: String,
    broker: Option<ServerHandle>,
}

impl Server {
    /// The in-process broker, if the example started one (`None` with `AMPS_URI`).
    pub fn broker(&self) -> Option<&ServerHandle> {
        self.broker.as_ref()
    }
}

/// `AMPS_URI` if set, else an in-process broker configured by `config` (with its default
/// topics when `config` does not change them: SOW topic `orders` keyed by `/id`,
/// transaction-logged `events`, queue `jobs`).
pub fn server(config: Config) -> Result<Server, String> {
    if let Ok(uri) = std::env::var("AMPS_URI") {
        println!("using the server at {uri} (AMPS_URI)");
        return Ok(Server { uri, broker: None });
    }
    let broker = start_broker(config)?;
    let uri = uri_of(&broker);
    println!("started an in-process amps-broker at {uri}");
    Ok(Server {
        uri,
        broker: Some(broker),
    })
}

/// [`server`] for async examples: the in-process broker runs on the caller's tokio runtime
/// (a runtime of its own cannot be started or dropped inside another).
pub async fn server_async(config: Config) -> Result<Server, String> {
    if let Ok(uri) = std::env::var("AMPS_URI") {
        println!("using the server at {uri} (AMPS_URI)");
        return Ok(Server { uri, broker: None });
    }
    let addr = "127.0.0.1:0".parse().map_err(|e| format!("{e}"))?;
    let broker = amps_broker::Server::start(config, addr)
        .await
        .map_err(|e| format!("starting the broker: {e}"))?;
    let uri = uri_of(&broker);
    println!("started an in-process amps-broker at {uri}");
    Ok(Server {
        uri,
        broker: Some(broker),
    })
}

/// Start an in-process broker on a free loopback port.
pub fn start_broker(config: Config) -> Result<ServerHandle, String> {
    let addr = "127.0.0.1:0".parse().map_err(|e| format!("{e}"))?;
    ServerHandle::start_blocking(config, addr).map_err(|e| format!("starting the broker: {e}"))
}

/// The connection string of an in-process broker.
pub fn uri_of(broker: &ServerHandle) -> String {
    format!("tcp://{}/amps/json", broker.local_addr())
}

/// A client name unique to this run (client names identify publishers to the server).
pub fn client_name(role: &str) -> String {
    format!("example-{role}-{}", std::process::id())
}
