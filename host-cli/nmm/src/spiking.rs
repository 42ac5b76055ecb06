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
///
/// ```
/// use nmm_core::models::Mpr;
/// let mf = Mpr::<f64>::default();
/// // At p = 1 the quiescent state of MPR itself; at p < 1 that of MPR with J -> J p.
/// let (r1, _) = nmm::spiking::quiescent_state(&mf, 1.0, false);
/// let (r06, _) = nmm::spiking::quiescent_state(&mf, 0.6, false);
/// assert!(r1 > 0.0 && r06 > 0.0 && r06 != r1);
/// ```
pub fn quiescent_state(mf: &Mpr<f64>, p: f64, normalise: bool) -> (f64, f64) {
    let eff = if normalise {
        *mf
    } else {
        crate::models::mpr_with_j_p(mf, p)
    };
    let x0 = eff.initial_state();
    (x0[0], x0[1])
}

/// The metadata every network output records.
///
/// ```
/// use nmm::network::{Common, Connectivity, Heterogeneity, QifParams, Synapse, run_qif};
/// let c = Common {
///     n: 100, dt: 1e-3, t0: 0.0, t_end: 0.2, bin: 0.01, conn: Connectivity::AllToAll,
///     normalise: false, hetero: Heterogeneity::Quantiles, stim: nmm_core::stim::StimSpec::None,
///     seed: 3, stim_seed: 3, record: 0, threads: 1, init: (0.1, -2.0),
/// };
/// let p = QifParams { tau: 1.0, eta_bar: -5.0, delta: 1.0, j: 15.0, v_peak: 100.0, v_reset: -100.0, synapse: Synapse::Instant };
/// let out = run_qif(&c, &p, &nmm::progress::Silent)?;
/// let meta = nmm::spiking::run_meta("qif", &c, &out, serde_json::json!({"V_peak": 100.0}));
/// assert_eq!(meta["N"], 100);
/// assert_eq!(meta["seed"], 3);
/// assert_eq!(meta["V_peak"], 100.0);
/// # Ok::<(), nmm::Error>(())
/// ```
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
///
/// ```
/// use nmm::network::{Common, Connectivity, Heterogeneity, QifParams, Synapse, run_qif};
/// let c = Common {
///     n: 100, dt: 1e-3, t0: 0.0, t_end: 0.2, bin: 0.01, conn: Connectivity::AllToAll,
///     normalise: false, hetero: Heterogeneity::Quantiles, stim: nmm_core::stim::StimSpec::None,
///     seed: 3, stim_seed: 3, record: 0, threads: 1, init: (0.1, -2.0),
/// };
/// let p = QifParams { tau: 1.0, eta_bar: -5.0, delta: 1.0, j: 15.0, v_peak: 100.0, v_reset: -100.0, synapse: Synapse::Instant };
/// let out = run_qif(&c, &p, &nmm::progress::Silent)?;
/// let meta = nmm::spiking::run_meta("qif", &c, &out, serde_json::json!({"V_peak": 100.0}));
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("run_000000.npz");
/// nmm::spiking::write_output(&path, "qif", &out, &meta)?;
/// assert!(nmm::sweep::run_complete(&path));
/// # Ok::<(), nmm::Error>(())
/// ```
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
