//! Prometheus metrics, exported from the same [`Snapshot`] that `tandem show` prints, so the two never
//! disagree. Counters are exported as absolute values (the workers and the sync core own the counting).
//! Every family has `# HELP` and `# TYPE` lines; what varies within a family is a label, never a name:
//!
//! - workers: `tandem_worker_<counter>_total{worker}`, `tandem_worker_drops_total{worker,reason}`,
//!   `tandem_states{worker}`;
//! - ports: `tandem_port_<counter>_total{port}`, `tandem_port_link_up{port}`;
//! - rules: `tandem_rule_packets_total{rule}`, `tandem_rule_states_total{rule}`;
//! - sync: `tandem_sync_messages_total{direction,action}` and `tandem_sync_bytes_total{direction,action}`,
//!   `tandem_sync_drops_total{reason}`, `tandem_sync_refused_total{reason}`,
//!   `tandem_sync_auth_total{result}`, `tandem_sync_<counter>_total` for the rest, `tandem_sync_in_sync`,
//!   `tandem_sync_states`, `tandem_sync_deferrals`, `tandem_sync_peer_alive{peer}`, the latencies as
//!   histograms `tandem_sync_latency_us_bucket{stage,le}` with `_sum` and `_count` (stages
//!   `change_to_send`, `iack`), and their quantiles as `tandem_sync_lag_us{stage,quantile}`;
//! - VRRP: `tandem_vrrp_state{group,state}` (1 for the group's state, 0 for the others),
//!   `tandem_vrrp_priority{group}`, `tandem_vrrp_effective_priority{group}`,
//!   `tandem_vrrp_<counter>_total{group}`.

use std::net::SocketAddr;

use metrics::{counter, describe_counter, describe_gauge, gauge};

use crate::admin::Snapshot;

/// Starts the HTTP endpoint Prometheus scrapes, on its own thread, and describes the fixed families.
pub fn install(listen: SocketAddr) -> Result<(), String> {
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .with_http_listener(listen)
        .install()
        .map_err(|e| format!("cannot serve metrics on {listen}: {e}"))?;
    describe();
    Ok(())
}

fn describe() {
    describe_gauge!("tandem_states", "States held, per worker.");
    describe_counter!(
        "tandem_worker_drops_total",
        "Packets a worker dropped, by reason."
    );
    describe_gauge!("tandem_port_link_up", "1 when the port's link is up.");
    describe_counter!("tandem_rule_packets_total", "Packets each rule decided.");
    describe_counter!("tandem_rule_states_total", "States each rule created.");
    describe_gauge!(
        "tandem_sync_in_sync",
        "1 when the node holds its peers' states (no bulk update pending)."
    );
    describe_gauge!("tandem_sync_states", "States the sync engine tracks.");
    describe_gauge!(
        "tandem_sync_deferrals",
        "Creating packets held by deferral now."
    );
    describe_counter!(
        "tandem_sync_messages_total",
        "pfsync messages, by direction and action."
    );
    describe_counter!(
        "tandem_sync_bytes_total",
        "pfsync message bytes, by direction and action."
    );
    describe_counter!(
        "tandem_sync_drops_total",
        "Sync packets or messages dropped, by reason."
    );
    describe_counter!(
        "tandem_sync_refused_total",
        "Peers' states refused because Tandem cannot carry them, by kind."
    );
    describe_counter!(
        "tandem_sync_auth_total",
        "Sync datagrams through the authentication layer, by result."
    );
    describe_counter!(
        "tandem_sync_latency_us_bucket",
        "Sync latencies in microseconds (change to send, insert to acknowledgement), cumulative buckets."
    );
    describe_counter!(
        "tandem_sync_latency_us_sum",
        "Sum of the sync latencies, microseconds."
    );
    describe_counter!("tandem_sync_latency_us_count", "Sync latencies recorded.");
    describe_gauge!(
        "tandem_sync_lag_us",
        "Sync latency quantiles in microseconds (bucket upper bounds)."
    );
    describe_gauge!(
        "tandem_sync_peer_alive",
        "1 while a sync peer is heard from."
    );
    describe_gauge!(
        "tandem_vrrp_state",
        "1 for each VRRP group's present state, 0 for the others."
    );
    describe_gauge!(
        "tandem_vrrp_priority",
        "Each VRRP group's configured priority."
    );
    describe_gauge!(
        "tandem_vrrp_effective_priority",
        "The priority each VRRP group advertises (lowered while the node is demoted)."
    );
}

/// A family's HELP for a counter named after the snapshot's counter: what `tandem show` calls it.
fn describe_dynamic(name: &str, what: &str, counter_name: &str) {
    describe_counter!(
        name.to_string(),
        format!("{what} counter `{counter_name}` (see `tandem show`).")
    );
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
                None => {
                    let name = format!("tandem_worker_{}_total", c.name);
                    describe_dynamic(&name, "Worker", &c.name);
                    counter!(name, "worker" => worker.clone()).absolute(c.value)
                }
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
            let name = format!("tandem_port_{}_total", c.name);
            describe_dynamic(&name, "Port", &c.name);
            counter!(name, "port" => p.name.clone()).absolute(c.value);
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
            export_sync_counter(&c.name, c.value);
        }
        for q in &sync.lag_us {
            // Names are `<stage>_p<quantile>`, such as `change_to_send_p99`.
            let (stage, quantile) = q.name.rsplit_once("_p").unwrap_or((q.name.as_str(), ""));
            gauge!("tandem_sync_lag_us", "stage" => stage.to_string(), "quantile" => format!("0.{quantile}"))
                .set(q.value as f64);
        }
        for h in &sync.histograms {
            for (le, n) in &h.buckets {
                counter!("tandem_sync_latency_us_bucket", "stage" => h.stage.clone(), "le" => le.to_string())
                    .absolute(*n);
            }
            counter!("tandem_sync_latency_us_bucket", "stage" => h.stage.clone(), "le" => "+Inf")
                .absolute(h.count);
            counter!("tandem_sync_latency_us_sum", "stage" => h.stage.clone()).absolute(h.sum_us);
            counter!("tandem_sync_latency_us_count", "stage" => h.stage.clone()).absolute(h.count);
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
            let name = format!("tandem_vrrp_{}_total", c.name);
            describe_dynamic(&name, "VRRP group", &c.name);
            counter!(name, "group" => g.name.clone()).absolute(c.value);
        }
    }
}

/// One of `show sync`'s counters, under its family: messages and bytes by direction and action, drops,
/// refusals and authentication results by reason, gauges for what is a level rather than a count.
fn export_sync_counter(name: &str, value: u64) {
    if let Some((direction, rest)) = name.split_once('_')
        && (direction == "in" || direction == "out")
    {
        if let Some(action) = rest.strip_suffix("_messages") {
            counter!("tandem_sync_messages_total", "direction" => direction.to_string(), "action" => action.to_string())
                .absolute(value);
            return;
        }
        if let Some(action) = rest.strip_suffix("_bytes") {
            counter!("tandem_sync_bytes_total", "direction" => direction.to_string(), "action" => action.to_string())
                .absolute(value);
            return;
        }
    }
    match name {
        "states" => gauge!("tandem_sync_states").set(value as f64),
        "deferrals_now" => gauge!("tandem_sync_deferrals").set(value as f64),
        _ => {
            if let Some(reason) = name.strip_prefix("drop_") {
                counter!("tandem_sync_drops_total", "reason" => reason.to_string()).absolute(value);
            } else if let Some(reason) = name.strip_prefix("refused_") {
                counter!("tandem_sync_refused_total", "reason" => reason.to_string())
                    .absolute(value);
            } else if let Some(result) = name.strip_prefix("auth_") {
                counter!("tandem_sync_auth_total", "result" => result.to_string()).absolute(value);
            } else {
                let family = format!("tandem_sync_{name}_total");
                describe_dynamic(&family, "Sync", name);
                counter!(family).absolute(value);
            }
        }
    }
}
