//! Prometheus metrics, exported from the same [`Snapshot`] that `tandem show` prints, so the two never
//! disagree. Counters are exported as absolute values (the workers and the sync core own the counting);
//! latency distributions as quantile gauges.
//!
//! Names: `tandem_worker_<counter>_total{worker}` and `tandem_worker_drops_total{worker,reason}`,
//! `tandem_states{worker}`, `tandem_port_<counter>_total{port}`, `tandem_rule_packets_total{rule}` and
//! `tandem_rule_states_total{rule}`, `tandem_sync_<counter>_total`, `tandem_sync_in_sync`,
//! `tandem_sync_lag_us{stage,quantile}`, `tandem_sync_peer_alive{peer}`, and per VRRP group
//! `tandem_vrrp_state{group,state}` (1 for the group's state, 0 for the others),
//! `tandem_vrrp_priority{group}`, `tandem_vrrp_effective_priority{group}` and
//! `tandem_vrrp_<counter>_total{group}`.

use std::net::SocketAddr;

use metrics::{counter, gauge};

use crate::admin::Snapshot;

/// Starts the HTTP endpoint Prometheus scrapes, on its own thread.
pub fn install(listen: SocketAddr) -> Result<(), String> {
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .with_http_listener(listen)
        .install()
        .map_err(|e| format!("cannot serve metrics on {listen}: {e}"))
}

/// Publishes everything in `snapshot`.
pub fn export(snapshot: &Snapshot) {
    for w in &snapshot.workers {
        let worker = w.worker.to_string();
        gauge!("tandem_states", "worker" => worker.clone()).set(w.states as f64);
        for c in &w.counters {
            match c.name.strip_prefix("drop_") {
                Some(reason) => counter!("tandem_worker_drops_total", "worker" => worker.clone(), "reason" => reason.to_string())
                    .absolute(c.value),
                None => counter!(format!("tandem_worker_{}_total", c.name), "worker" => worker.clone()).absolute(c.value),
            }
        }
    }
    for p in &snapshot.ports {
        gauge!("tandem_port_link_up", "port" => p.name.clone()).set(if p.link_up {
            1.0
        } else {
            0.0
        });
        for c in &p.counters {
            counter!(format!("tandem_port_{}_total", c.name), "port" => p.name.clone())
                .absolute(c.value);
        }
    }
    for r in &snapshot.rules {
        let rule = r.index.to_string();
        counter!("tandem_rule_packets_total", "rule" => rule.clone()).absolute(r.packets);
        counter!("tandem_rule_states_total", "rule" => rule).absolute(r.states);
    }
    if let Some(sync) = &snapshot.sync {
        gauge!("tandem_sync_in_sync").set(if sync.in_sync { 1.0 } else { 0.0 });
        for c in &sync.counters {
            counter!(format!("tandem_sync_{}_total", c.name)).absolute(c.value);
        }
        for q in &sync.lag_us {
            // Names are `<stage>_p<quantile>`, such as `change_to_send_p99`.
            let (stage, quantile) = q.name.rsplit_once("_p").unwrap_or((q.name.as_str(), ""));
            gauge!("tandem_sync_lag_us", "stage" => stage.to_string(), "quantile" => format!("0.{quantile}"))
                .set(q.value as f64);
        }
    }
    for p in &snapshot.peers {
        gauge!("tandem_sync_peer_alive", "peer" => p.address.clone()).set(if p.alive {
            1.0
        } else {
            0.0
        });
    }
    for g in &snapshot.failover {
        for state in ["initialize", "backup", "master"] {
            gauge!("tandem_vrrp_state", "group" => g.name.clone(), "state" => state)
                .set(if g.state == state { 1.0 } else { 0.0 });
        }
        gauge!("tandem_vrrp_priority", "group" => g.name.clone()).set(f64::from(g.priority));
        gauge!("tandem_vrrp_effective_priority", "group" => g.name.clone())
            .set(f64::from(g.effective_priority));
        for c in &g.counters {
            counter!(format!("tandem_vrrp_{}_total", c.name), "group" => g.name.clone())
                .absolute(c.value);
        }
    }
}
