//! Network runs as files: the default initial state of QIF runs, the metadata every network
//! output records, and the `.npz` writer (`nmm spiking` and sweeps write through these).

use crate::error::Result;
use crate::io::{NpzEntry, write_npz};
use crate::network::{Common, Connectivity, Output};
use ndarray::Array1;
use nmm_core::Model;
use nmm_core::models::Mpr;
use serde_json::{Value, json};
use std::path::Path;

/// MPR's quiescent fixed point with the effective coupling a QIF network of connection
/// probability `p` sees (J p without normalisation): the default initial state of QIF runs.
pub fn quiescent_state(mf: &Mpr<f64>, p: f64, normalise: bool) -> (f64, f64) {
    let eff = Mpr {
        j: if normalise { mf.j } else { mf.j * p },
        ..*mf
    };
    let x0 = eff.initial_state();
    (x0[0], x0[1])
}

/// The metadata every network output records.
pub fn run_meta(kind: &str, c: &Common, out: &Output, extra: Value) -> Value {
    let (conn, p, procedural) = match c.conn {
        Connectivity::AllToAll => ("all-to-all", 1.0, false),
        Connectivity::Random { p, procedural } => ("erdos-renyi", p, procedural),
    };
    let mut meta = json!({
        "nmm_version": crate::VERSION,
        "command": crate::command_line(),
        "network": kind,
        "N": c.n, "p": p, "connectivity": conn, "procedural": procedural,
        "normalisation": if c.normalise { "J/(pN)" } else { "J/N (mean drive ~ J p r)" },
        "heterogeneity": format!("{:?}", c.hetero).to_lowercase(),
        "dt": c.dt, "t0": c.t0, "t_end": c.t_end,
        "rate_bin": c.bin,
        "rate": "spikes per neuron per time unit in each bin; t = bin centre",
        "v": "mean membrane potential over non-refractory neurons, averaged over the bin",
        "stim": c.stim.to_string(),
        "seed": c.seed,
        "stim_seed": c.stim_seed,
        "init": {"r": c.init.0, "v": c.init.1},
        "synapses": out.synapses,
        "spikes": out.spikes,
        "synaptic_events": out.events,
        "connectivity_bytes": out.conn_bytes,
        "state_bytes": out.state_bytes,
    });
    if let (Value::Object(m), Value::Object(e)) = (&mut meta, extra) {
        m.extend(e);
    }
    meta
}

/// Writes a network run's `.npz`.
pub fn write_output(path: &Path, kind: &str, out: &Output, meta: &Value) -> Result<()> {
    let mut entries = vec![
        ("t".to_string(), NpzEntry::F1(Array1::from(out.t.clone()))),
        ("r".to_string(), NpzEntry::F1(Array1::from(out.r.clone()))),
        ("v".to_string(), NpzEntry::F1(Array1::from(out.v.clone()))),
    ];
    if kind == "izh" {
        entries.push(("w".into(), NpzEntry::F1(Array1::from(out.w.clone()))));
        entries.push(("s".into(), NpzEntry::F1(Array1::from(out.s.clone()))));
    }
    entries.push((
        "input".into(),
        NpzEntry::F1(Array1::from(out.input.clone())),
    ));
    entries.push((
        "spike_t".into(),
        NpzEntry::F1(Array1::from(out.spike_t.clone())),
    ));
    entries.push((
        "spike_i".into(),
        NpzEntry::F1(out.spike_i.iter().map(|&i| i as f64).collect()),
    ));
    entries.push((
        "seed".into(),
        NpzEntry::U64(meta["seed"].as_u64().unwrap_or(0)),
    ));
    entries.push((
        "meta".into(),
        NpzEntry::Text(serde_json::to_string_pretty(meta)?),
    ));
    write_npz(path, &entries)
}
