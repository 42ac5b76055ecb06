//! BOLD of any neural series: the Balloon-Windkessel observer of core run over a stored
//! `time x regions` array, and the step limit every BOLD integration in nmm obeys.

use crate::error::{Context, Result, bail};
use ndarray::{Array1, Array2};
use nmm_core::bold::{BoldMonitor, BoldParams};

/// Largest integration step of the Balloon-Windkessel equations, in ms: a tenth of their
/// shortest time scale, the smallest of `tau_s`, `tau_f` and `alpha tau_0` (the outflow
/// `v^(1/alpha)` relaxes at the rate `1/(alpha tau_0)`, 3.2/s with the presets' `alpha = 0.32`,
/// `tau_0 = 0.98 s`): 31 ms for every preset. Above it the explicit step loses accuracy and, a
/// few times higher, stability (a 1 s step gave BOLD of 1e288), so nmm refuses it.
///
/// ```
/// use nmm_core::bold::{BoldParams, BoldPreset};
/// let p = BoldParams::<f64>::preset(BoldPreset::Stephan2007);
/// let limit = nmm::bold::max_step_ms(&p);
/// assert!((limit - 31.36).abs() < 1e-9, "{limit}");
/// ```
pub fn max_step_ms(p: &BoldParams<f64>) -> f64 {
    100.0 * p.tau_s.min(p.tau_f).min(p.alpha * p.tau_0)
}

/// Refuses a BOLD step above [`max_step_ms`]; `what` names the flag or field that set it.
///
/// ```
/// use nmm_core::bold::{BoldParams, BoldPreset};
/// let p = BoldParams::<f64>::preset(BoldPreset::Stephan2007);
/// assert!(nmm::bold::check_step(&p, 5.0, "bold.dt_ms").is_ok());
/// let e = nmm::bold::check_step(&p, 1000.0, "--dt-ms").unwrap_err().to_string();
/// assert!(e.contains("--dt-ms"), "{e}");
/// ```
pub fn check_step(p: &BoldParams<f64>, dt_ms: f64, what: &str) -> Result<()> {
    let limit = max_step_ms(p);
    if !(dt_ms.is_finite() && dt_ms > 0.0) {
        bail!("{what} = {dt_ms}: the BOLD step must be a positive number of ms");
    }
    if dt_ms > limit {
        bail!(
            "{what} = {dt_ms} ms is too coarse for the Balloon-Windkessel equations: steps up to \
             {limit:.1} ms (a tenth of their shortest time scale, min(tau_s, tau_f, alpha tau_0) \
             = {:.3} s) keep them accurate and stable; give the drive at a finer step",
            limit / 100.0
        );
    }
    Ok(())
}

/// BOLD sampled every `tr_ms` from rest at t = 0 (samples at `k TR`, `k = 1, 2, ...`) of the
/// drive `z` (`time x regions`, one sample every `dt_ms`).
///
/// ```
/// use ndarray::Array2;
/// use nmm_core::bold::{BoldParams, BoldPreset};
/// let p = BoldParams::<f64>::preset(BoldPreset::Stephan2007);
/// let z = Array2::from_elem((4000, 2), 0.1); // 20 s at 5 ms
/// let bold = nmm::bold::of_series(&z, 5.0, 2000.0, p).unwrap();
/// assert_eq!(bold.dim(), (10, 2));
/// assert!(bold.iter().all(|b| b.is_finite()));
/// ```
pub fn of_series(
    z: &Array2<f64>,
    dt_ms: f64,
    tr_ms: f64,
    params: BoldParams<f64>,
) -> Result<Array2<f64>> {
    check_step(&params, dt_ms, "dt_ms (--dt-ms)")?;
    let (n_t, n_r) = z.dim();
    let mut state = vec![[0.0f64; 4]; n_r];
    let mut monitor = BoldMonitor::new(params, &mut state, dt_ms / 1000.0, tr_ms / 1000.0)
        .with_context(|| format!("--dt-ms {dt_ms}, --tr-ms {tr_ms}"))?;
    let per_tr = monitor.steps_per_tr();
    let n_out = n_t / per_tr;
    if n_out == 0 {
        bail!(
            "the input covers {} ms ({n_t} samples of {dt_ms} ms), shorter than one TR of {tr_ms} ms",
            n_t as f64 * dt_ms
        );
    }
    let mut bold = Array2::<f64>::zeros((n_out, n_r));
    let mut row = vec![0.0; n_r];
    let mut k = 0;
    for zr in z.rows() {
        let zr = zr
            .as_slice()
            .map(|s| s.to_vec())
            .unwrap_or_else(|| zr.to_vec());
        if monitor.step(&zr, &mut row) {
            if row.iter().any(|b| !b.is_finite()) {
                bail!("BOLD became non-finite at TR {k}; check the input scale");
            }
            bold.row_mut(k).assign(&Array1::from(row.clone()));
            k += 1;
            if k == n_out {
                break;
            }
        }
    }
    Ok(bold)
}
