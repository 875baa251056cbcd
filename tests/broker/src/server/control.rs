//! The control port: one command per line (see the crate docs), answered `ok` or `error: …`, so
//! processes in other languages or under emulation can drive the fault hooks.

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use super::ServerHandle;

/// Longest accepted command line.
const MAX_LINE: usize = 1024;

pub(super) async fn serve(listener: TcpListener, handle: ServerHandle) {
    let handle = std::sync::Arc::new(handle);
    while let Ok((stream, _)) = listener.accept().await {
        let handle = handle.clone();
        tokio::spawn(async move {
            let (r, mut w) = stream.into_split();
            let mut lines = BufReader::new(r).take(1 << 20).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let reply = if line.len() > MAX_LINE {
                    "error: line too long\n".to_owned()
                } else if line.trim() == "help" {
                    format!("ok {}\n", COMMANDS)
                } else {
                    match handle.control(&line) {
                        Ok(()) => "ok\n".to_owned(),
                        Err(e) => format!("error: {e}\n"),
                    }
                };
                if w.write_all(reply.as_bytes()).await.is_err() {
                    return;
                }
            }
        });
    }
}

/// One-line summary of the commands, for `help`.
pub(crate) const COMMANDS: &str = "close-all | close-client NAME | close-after N | fail-next-publish [reason] | \
     refuse-logons on [reason]|off | heartbeats on|off | delay-acks MS | withhold-acks on|off | hold-compiles on|off | \
     restart | clear";
