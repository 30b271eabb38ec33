//! systemd notification (`Type=notify`): `READY=1` once every local partition
//! has joined its group and replayed, `STATUS=` lines with the partition roles
//! whenever they change, `WATCHDOG=1` while every shard loop keeps turning (when
//! `WATCHDOG_USEC` is set), and `STOPPING=1` at shutdown. Without
//! `NOTIFY_SOCKET` every call does nothing.

use std::sync::Arc;
use std::time::Duration;

use sd_notify::NotifyState;

use crate::view::BrokerView;

/// How often readiness and roles are checked.
pub const POLL_INTERVAL_MS: u64 = 50;

fn send(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!("sd_notify failed: {e}");
    }
}

/// Sends `STATUS=` with the roles, then `READY=1` once every local partition is
/// ready, then keeps `STATUS=` current and feeds the watchdog until the broker
/// stops. Runs as a tokio task for the life of the broker.
pub async fn run(view: Arc<BrokerView>) {
    let watchdog = sd_notify::watchdog_enabled();
    // systemd recommends pinging at half the interval; a shard silent for a
    // whole interval withholds the ping.
    let ping_every = watchdog.map(|w| w / 2);
    let max_silence_ms = watchdog.map(|w| w.as_millis() as u64).unwrap_or(u64::MAX);
    let mut last_status = String::new();
    let mut ready_sent = false;
    let mut last_ping = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(POLL_INTERVAL_MS));
    loop {
        tick.tick().await;
        if view.stopping() {
            return;
        }
        let status = view.status_line();
        if status != last_status {
            send(&[NotifyState::Status(&status)]);
            last_status = status;
        }
        if !ready_sent && view.started() && view.all_ready() {
            send(&[NotifyState::Ready]);
            ready_sent = true;
            tracing::info!("ready: {last_status}");
        }
        if let Some(every) = ping_every {
            if last_ping.elapsed() >= every && view.shards_alive(max_silence_ms) {
                send(&[NotifyState::Watchdog]);
                last_ping = tokio::time::Instant::now();
            }
        }
    }
}

/// Tells systemd the broker is stopping.
pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}
