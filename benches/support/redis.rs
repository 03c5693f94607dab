//! A private `redis-server` for a bench, on a free port, stopped when dropped; and a
//! client to it with the gateway's own settings.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fred::clients::Client;
use fred::interfaces::ClientLike;

pub struct Redis(Child, pub u16);

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn start_redis() -> Redis {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server on PATH");
    Redis(child, port)
}

/// A client with the gateway's settings, once the server accepts connections.
pub async fn client(redis: &Redis) -> Client {
    let url = format!("redis://127.0.0.1:{}", redis.1);
    let (config, perf, conn, policy) = lms_realtime::cluster::client_config(&url).unwrap();
    let c = Client::new(config, Some(perf), Some(conn), Some(policy));
    for _ in 0..50 {
        if c.init().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    c
}
