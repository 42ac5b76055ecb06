//! The universal differential equation: a base mean field (MPR or Chen-Campbell), exact and
//! untouched, plus a small MLP term trained as a neural ODE on the runs with the trainer of
//! [`crate::train`] (its rollouts, loss, Adam, windows and validation); then the learned term
//! sampled at every state of every run, as normal equations against the candidate library.
//!
//! The network's inputs are the state, the run's constants and the drive:
//! `(r, v, eta, p, J, I)` for MPR (the inputs of the MLP mean field), `(r, v, w, s, eta, g, p, I)`
//! for Chen-Campbell (the Izhikevich sweeps vary `eta` and the conductance `g`). Its outputs are
//! one derivative per state variable. The loss weighs the rate as the MLP trainer does (1) and
//! every other variable as it weighs `v` (0.25), each in units of its spread in the data.
//!
//! The known part's Jacobian enters the adjoint: hand-written for MPR, from dual numbers
//! ([`nmm_core::dual::Dual`]) for Chen-Campbell (checked against each other and against
//! central differences in the tests).

use super::{Gram, Library, Run, UdeSummary, base_model, library_row, term_count};
use crate::error::{Result, bail, input};
use crate::progress::Progress;
use crate::train::rollout::{Known, KnownField, Net, Objective, Samples, Series, eval};
use nmm_core::Model;
use nmm_core::dual::Dual;
use nmm_core::mlp::Normalisation;
use nmm_core::models::corrected::Corrected;
use nmm_core::models::{ChenCampbell, Mpr, ParamError, ParamSpec};
use serde::{Deserialize, Serialize};

/// A base field the UDE is trained on: its known part and the network's inputs.
pub trait UdeBase<const N: usize, const I: usize>: Library<f64, N> + Default {
    /// The known field with its Jacobian.
    type Known: KnownField<I, N>;
    /// The network's inputs between the state and the drive, in order: run parameters by
    /// name, `"p"` for the connection probability. These may differ between runs; every other
    /// parameter must be the same in all of them (the known part is one field).
    const CONSTANTS: &'static [&'static str];
    /// Loss weight of each state variable, in units of its spread.
    const LAMBDA: [f64; N];
    /// The model name of the trained UDE run as a model (`nmm mf ude`).
    const UDE_NAME: &'static str;
    /// The known part with the shared parameters of `m` (the varying ones come from `u`).
    fn known(m: &Self) -> Self::Known;
}

impl UdeBase<2, 6> for Mpr<f64> {
    type Known = Known;
    const CONSTANTS: &'static [&'static str] = &["eta", "p", "J"];
    const LAMBDA: [f64; 2] = [1.0, 0.25];
    const UDE_NAME: &'static str = "mpr-ude";
    fn known(m: &Self) -> Known {
        Known {
            delta: m.delta,
            tau: m.tau,
        }
    }
}

/// The Chen-Campbell field at network inputs `u = (r, v, w, s, eta, g, p, I)`, its Jacobian
/// from dual numbers (four tangents, one per state variable).
#[derive(Clone, Copy, Debug)]
pub struct KnownCc {
    model: ChenCampbell<Dual<f64, 4>>,
}

impl KnownField<8, 4> for KnownCc {
    #[inline]
    fn field(&self, u: &[f64; 8]) -> ([f64; 4], [[f64; 4]; 4]) {
        let mut m = self.model;
        m.eta = Dual::constant(u[4]);
        m.g = Dual::constant(u[5]);
        let x = Dual::variables([u[0], u[1], u[2], u[3]]);
        let f = m.deriv(&x, Dual::constant(u[7]));
        (f.map(|d| d.v), f.map(|d| d.d))
    }
}

impl UdeBase<4, 8> for ChenCampbell<f64> {
    type Known = KnownCc;
    const CONSTANTS: &'static [&'static str] = &["eta", "g", "p"];
    const LAMBDA: [f64; 4] = [1.0, 0.25, 0.25, 0.25];
    const UDE_NAME: &'static str = "cc-ude";
    fn known(m: &Self) -> KnownCc {
        let mut model = ChenCampbell::<Dual<f64, 4>>::default();
        for spec in <Self as Model<f64, 4>>::PARAMS {
            if let Some(v) = Model::get(m, spec.name) {
                // Every value of a valid f64 model is valid in dual numbers.
                let _ = model.set(spec.name, Dual::constant(v));
            }
        }
        KnownCc { model }
    }
}

/// A run as the trainer reads it: the inputs are `u0` with the state and the drive filled in.
#[derive(Clone, Copy)]
pub(crate) struct UdeRun<'a, const N: usize, const I: usize> {
    run: &'a Run,
    u0: [f64; I],
}

impl<'a, const N: usize, const I: usize> UdeRun<'a, N, I> {
    fn new<M: UdeBase<N, I>>(run: &'a Run) -> Result<Self> {
        check_inputs::<M, N, I>();
        let mut u0 = [0.0; I];
        for (u, name) in u0.iter_mut().skip(N).zip(M::CONSTANTS) {
            *u = if *name == "p" {
                run.p
            } else {
                param(run, name)?
            };
        }
        Ok(Self { run, u0 })
    }
}

impl<const N: usize, const I: usize> Samples for UdeRun<'_, N, I> {
    fn len(&self) -> usize {
        self.run.input.len()
    }
    fn dt(&self) -> f64 {
        self.run.dt
    }
}

impl<const N: usize, const I: usize> Series<I, N> for UdeRun<'_, N, I> {
    #[inline]
    fn inputs(&self, k: usize) -> [f64; I] {
        let mut u = self.u0;
        for (i, x) in self.run.x.iter().enumerate().take(N) {
            u[i] = x[k];
        }
        u[I - 1] = self.run.input[k];
        u
    }
    #[inline]
    fn state(&self, k: usize) -> [f64; N] {
        core::array::from_fn(|i| self.run.x[i][k])
    }
    #[inline]
    fn drive(&self, k: usize) -> f64 {
        self.run.input[k]
    }
}

/// `I` = state + constants + drive for base `M`: checked when the code is compiled (a base
/// whose `CONSTANTS` do not fit its `I` does not build), so no run can meet it.
const fn check_inputs<M: UdeBase<N, I>, const N: usize, const I: usize>() {
    const {
        assert!(
            N + M::CONSTANTS.len() + 1 == I,
            "the state, the constants and the drive must be the network's I inputs"
        )
    }
}

fn param(r: &Run, name: &str) -> Result<f64> {
    r.params
        .get(name)
        .copied()
        .ok_or_else(|| input!("{}: params lack {name}", r.file.display()))
}

/// Trains the UDE (known `M` + MLP with `H` hidden units per layer) on the runs and returns the
/// normal equations of the learned term against the library, sampled at every state of every
/// run.
/// With `job.known` false the network is the whole field (the data-driven MLP mean field) and
/// the normal equations are those of the network minus the base field.
///
/// With `prev` (`--network-from`), the network of that earlier model file is used instead of
/// training one (its record and training summary are carried over).
pub(crate) fn ude<M: UdeBase<N, I>, const H: usize, const N: usize, const I: usize>(
    job: &super::Job,
    runs: &[Run],
    prev: Option<(&std::path::Path, &super::ModelFile)>,
    progress: &dyn Progress,
) -> Result<(Vec<Vec<Gram>>, UdeSummary, NetworkRecord)> {
    let series: Vec<UdeRun<N, I>> = runs.iter().map(UdeRun::new::<M>).collect::<Result<_>>()?;
    for r in runs {
        for spec in M::PARAMS {
            if M::CONSTANTS.contains(&spec.name) {
                continue;
            }
            let v = param(r, spec.name)?;
            if Some(&v) != runs[0].params.get(spec.name) {
                bail!(
                    "{}: {} differs from the first run's; the UDE's known part is one {} field, only {:?} may vary",
                    r.file.display(),
                    spec.name,
                    M::NAME,
                    M::CONSTANTS
                );
            }
        }
    }
    if let Some((path, file)) = prev {
        let at = |e: crate::Error| input!("{}: {e}", path.display());
        if file.base != super::Base::of::<N>() {
            bail!(
                "{}: a {} model; --base is {}",
                path.display(),
                file.base.name(),
                super::Base::of::<N>().name()
            );
        }
        let (Some(rec), Some(summary)) = (&file.network, &file.ude) else {
            bail!(
                "{}: no trained network in this model file (it was made without --epochs)",
                path.display()
            );
        };
        let (net, norm) = parse_record::<H, I, N>(rec).map_err(at)?;
        // The network learned the rest of one known field: the runs must share its parameters.
        for (k, v) in &file.base_params {
            if !M::CONSTANTS.contains(&k.as_str()) && runs[0].params.get(k) != Some(v) {
                bail!(
                    "{}: base_params.{k} = {v}, but the runs have {}: the network was trained on another field",
                    path.display(),
                    runs[0]
                        .params
                        .get(k)
                        .map_or("none".to_string(), |x| x.to_string())
                );
            }
        }
        progress.log(&format!(
            "the network of {} ({I}-{H}-{H}-{N}, {} epochs)",
            path.display(),
            summary.epochs
        ));
        let grams = learned_grams::<M, H, N, I>(&net, &norm, rec.known, &series)?;
        return Ok((grams, summary.clone(), rec.clone()));
    }
    let first: M = base_model(&runs[0])?;
    let (ti, vi) = crate::train::split(series.len(), job.val_fraction, None, job.seed);
    let pick = |idx: &[usize]| -> Vec<UdeRun<N, I>> { idx.iter().map(|&i| series[i]).collect() };
    let (train, val) = (pick(&ti), pick(&vi));
    let norm = crate::train::data::normalisation_of(&train);
    let sd: [f64; N] = core::array::from_fn(|i| norm.in_scale[i]);
    let mut obj =
        Objective::weighted(train[0].dt(), job.rollout, sd, M::LAMBDA).with_substeps(job.substeps);
    if job.known {
        obj = obj.with_base(M::known(&first));
    }
    let settings = crate::train::Settings {
        epochs: job.epochs,
        lr: job.lr,
        batch: job.batch,
        seed: job.seed,
    };
    let net0 = crate::train::init_net_sized::<H, I, N>(job.seed);
    progress.log(&format!(
        "UDE: {}{I}-{H}-{H}-{N} network, {} training and {} validation runs",
        if job.known {
            format!("{} + ", M::NAME.to_uppercase())
        } else {
            "no known part, ".into()
        },
        train.len(),
        val.len()
    ));
    let fit = crate::train::fit(net0, &norm, &obj, &train, &val, &settings, progress)?;
    let best_val = fit
        .val_loss
        .get(fit.best_epoch.saturating_sub(1))
        .copied()
        .unwrap_or(f64::NAN);
    let last_train = fit.train_loss.last().copied().unwrap_or(f64::NAN);
    // The training loss is in units of the data's spread (about 1 for a still field): beyond
    // 1e6 the rollouts blew up, even where they stayed finite.
    if (!val.is_empty() && !best_val.is_finite()) || last_train.is_nan() || last_train >= 1e6 {
        return Err(crate::Error::Diverged {
            at: fit.best_epoch as f64,
            region: None,
            variable: "loss".into(),
            message: format!(
                "the UDE's rollouts diverged (training loss {last_train:.3e}, best validation loss {best_val:.3e}): take more --substeps (Heun steps per data interval; now {}) or a smaller --lr",
                job.substeps
            ),
        });
    }
    let out = learned_grams::<M, H, N, I>(&fit.net, &norm, job.known, &series)?;
    Ok((
        out,
        UdeSummary {
            hidden: H,
            epochs: job.epochs,
            best_epoch: fit.best_epoch,
            train_loss: fit.train_loss,
            val_loss: fit.val_loss,
            runs: [train.len(), val.len()],
            seed: Some(job.seed),
        },
        NetworkRecord {
            known: job.known,
            hidden: H,
            inputs: super::Base::of::<N>()
                .ude_inputs()
                .iter()
                .map(|s| s.to_string())
                .collect(),
            weights: fit.net.iter().collect(),
            normalisation: norm.iter().collect(),
        },
    ))
}

/// Per-equation, per-run normal equations of the learned term (the network; with `known` false,
/// the network minus the base field) against the library, at every sample of every run.
fn learned_grams<M: UdeBase<N, I>, const H: usize, const N: usize, const I: usize>(
    net: &Net<H, I, N>,
    norm: &Normalisation<f64, I, N>,
    known: bool,
    series: &[UdeRun<N, I>],
) -> Result<Vec<Vec<Gram>>> {
    let k = term_count::<f64, M, N>();
    let mut out = vec![Vec::new(); N];
    let mut row = vec![0.0; k];
    for s in series {
        let m: M = base_model(s.run)?;
        let mut g = vec![Gram::new(k); N];
        for t in 0..s.len() {
            let u = s.inputs(t);
            let e = eval(net, norm, &u);
            let x = s.state(t);
            let f = m.deriv(&x, u[I - 1]);
            library_row(&m, s.run.p, s.run.n, &x, u[I - 1], &mut row);
            for i in 0..N {
                if known {
                    g[i].add(&row, e.f[i], f[i] + e.f[i]);
                } else {
                    g[i].add(&row, e.f[i] - f[i], e.f[i]);
                }
            }
        }
        for (i, mut gi) in g.into_iter().enumerate() {
            gi.symmetrise();
            out[i].push(gi);
        }
    }
    Ok(out)
}

/// The network and normalisation of a record, checked.
///
/// # Errors
/// Naming the field: another width or other inputs, the wrong number of weights or
/// normalisation values, a non-finite one, a zero input scale.
fn parse_record<const H: usize, const I: usize, const N: usize>(
    rec: &NetworkRecord,
) -> Result<(Net<H, I, N>, Normalisation<f64, I, N>)> {
    let want = super::Base::of::<N>().ude_inputs();
    if rec.hidden != H {
        bail!("network.hidden {}, expected {H}", rec.hidden);
    }
    if rec.inputs != want {
        bail!("network.inputs {:?}, expected {want:?}", rec.inputs);
    }
    if let Some(k) = rec.weights.iter().position(|w| !w.is_finite()) {
        bail!("network.weights[{k}] is not finite");
    }
    let net = Net::<H, I, N>::from_flat(&rec.weights).ok_or_else(|| {
        input!(
            "network.weights: {} values, expected {}",
            rec.weights.len(),
            Net::<H, I, N>::N_WEIGHTS
        )
    })?;
    let v = &rec.normalisation;
    if v.len() != 2 * (I + N) {
        bail!(
            "network.normalisation: {} values, expected {}",
            v.len(),
            2 * (I + N)
        );
    }
    if let Some(k) = v.iter().position(|w| !w.is_finite()) {
        bail!("network.normalisation[{k}] is not finite");
    }
    let norm = Normalisation {
        in_mean: core::array::from_fn(|k| v[k]),
        in_scale: core::array::from_fn(|k| v[I + k]),
        out_scale: core::array::from_fn(|k| v[2 * I + k]),
        out_offset: core::array::from_fn(|k| v[2 * I + N + k]),
    };
    if let Some(k) = norm.in_scale.iter().position(|s| *s == 0.0) {
        bail!("network.normalisation: input scale {k} is zero");
    }
    Ok((net, norm))
}

/// The trained network of a UDE, as stored in a model file (`[network]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NetworkRecord {
    /// `true`: the model is the base field plus the network (the UDE); `false`: the network is
    /// the whole field (`nmm discover --network-only`, the data-driven MLP mean field).
    pub known: bool,
    /// Width of both hidden layers.
    pub hidden: usize,
    /// The network's inputs in order (state, run constants, drive `I`), for a reader's check.
    pub inputs: Vec<String>,
    /// Weights in the order of [`nmm_core::mlp::Mlp::iter`]: `l1.w` (row-major), `l1.b`,
    /// `l2.w`, `l2.b`, `l3.w`, `l3.b`.
    pub weights: Vec<f64>,
    /// `in_mean`, `in_scale` (one per input, the inputs' units), `out_scale`, `out_offset` (one
    /// per state variable, units of its derivative).
    pub normalisation: Vec<f64>,
}

/// A trained UDE run as a model: the base field `M` (unless the network is the whole field)
/// plus the network `I -> H -> H -> N`, whose inputs are the state, the base parameters
/// [`UdeBase::CONSTANTS`] (and `p`), and the drive. Parameters as a [`Corrected`] model's: the
/// base's, `p` and `N` (`N` does not enter the network). The field is the trainer's, operation
/// for operation.
#[derive(Clone, Debug, PartialEq)]
pub struct UdeModel<M, const N: usize, const I: usize, const H: usize> {
    inner: Corrected<f64, M, N>,
    net: Net<H, I, N>,
    norm: Normalisation<f64, I, N>,
    known: bool,
    u0: [f64; I],
}

impl<M: UdeBase<N, I>, const N: usize, const I: usize, const H: usize> UdeModel<M, N, I, H> {
    /// The model of `rec` on `base` at connection probability `p` and network size `n`.
    ///
    /// # Errors
    /// Naming the field of `rec`: another width or other inputs, the wrong number of weights or
    /// normalisation values, a non-finite one, a zero input scale; `p` or `n` out of range.
    pub fn new(base: M, rec: &NetworkRecord, p: f64, n: f64) -> Result<Self> {
        check_inputs::<M, N, I>();
        let (net, norm) = parse_record::<H, I, N>(rec)?;
        let inner = Corrected::new(base, p, n).map_err(|e| input!("p or N: {e}"))?;
        let mut m = Self {
            inner,
            net,
            norm,
            known: rec.known,
            u0: [0.0; I],
        };
        m.refresh();
        Ok(m)
    }

    /// The run constants of the inputs from the parameters.
    fn refresh(&mut self) {
        for (u, name) in self.u0.iter_mut().skip(N).zip(M::CONSTANTS) {
            *u = self.inner.get(name).unwrap_or(0.0);
        }
    }

    /// Whether the base field is part of the model (a UDE) or the network is the whole field.
    pub fn known(&self) -> bool {
        self.known
    }
}

impl<M: UdeBase<N, I>, const N: usize, const I: usize, const H: usize> Model<f64, N>
    for UdeModel<M, N, I, H>
{
    const NAME: &'static str = M::UDE_NAME;
    const STATE: [&'static str; N] = M::STATE;
    const COUPLING_VAR: usize = M::COUPLING_VAR;
    const PARAMS: &'static [ParamSpec] = M::CORRECTED_PARAMS;

    #[inline]
    fn deriv(&self, x: &[f64; N], input: f64) -> [f64; N] {
        let mut u = self.u0;
        u[..N].copy_from_slice(x);
        u[I - 1] = input;
        let mut f = eval(&self.net, &self.norm, &u).f;
        if self.known {
            for (a, b) in f.iter_mut().zip(self.inner.base.deriv(x, input)) {
                *a += b;
            }
        }
        f
    }

    fn diffusion(&self) -> [f64; N] {
        self.inner.diffusion()
    }

    fn initial_state(&self) -> [f64; N] {
        self.inner.initial_state()
    }

    fn coupling_gain(&self) -> f64 {
        self.inner.coupling_gain()
    }

    #[inline]
    fn project(&self, x: [f64; N]) -> [f64; N] {
        self.inner.project(x)
    }

    fn get(&self, name: &str) -> Option<f64> {
        self.inner.get(name)
    }

    fn set(&mut self, name: &str, value: f64) -> core::result::Result<(), ParamError> {
        self.inner.set(name, value)?;
        self.refresh();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::rollout::{Net, Window, batch_loss, windows};

    /// A Chen-Campbell run (explicit Euler at 1e-3 under a sinusoidal drive, block means of
    /// `dt` = 0.5 over `samples` samples), as `load_runs` would give it.
    fn cc_run(eta: f64, g: f64, p: f64, samples: usize) -> Run {
        let m = ChenCampbell {
            eta,
            g,
            s_jump: ChenCampbell::<f64>::default().s_jump * p,
            ..ChenCampbell::default()
        };
        let (h, per) = (1e-3, 500);
        let mut x = [0.05, -0.5, 0.0, 0.1];
        let mut out = vec![Vec::new(); 4];
        let mut input = Vec::new();
        let mut t = 0.0_f64;
        for _ in 0..samples {
            let (mut acc, mut ia) = ([0.0; 4], 0.0);
            for _ in 0..per {
                let i = 0.08 * (0.05 * t).sin();
                let d = m.deriv(&x, i);
                for k in 0..4 {
                    x[k] += h * d[k];
                    acc[k] += x[k] / per as f64;
                }
                ia += i / per as f64;
                t += h;
            }
            for k in 0..4 {
                out[k].push(acc[k]);
            }
            input.push(ia);
        }
        let (params, _) = crate::models::params_json(&ChenCampbell::<f64> { eta, g, ..m });
        let params = params
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_f64().unwrap()))
            .collect();
        Run {
            file: format!("cc_{eta}_{g}_{p}.npz").into(),
            p,
            n: 1e4,
            params,
            dt: 0.5,
            x: out,
            input,
        }
    }

    /// The trainer's view of CC runs.
    fn cc_series(runs: &[Run]) -> Vec<UdeRun<'_, 4, 8>> {
        runs.iter()
            .map(UdeRun::new::<ChenCampbell<f64>>)
            .collect::<Result<_>>()
            .unwrap()
    }

    /// The UDE as a model is the trainer's field bit for bit (base + network, or the network
    /// alone), follows its parameters, and refuses damaged records naming the field.
    #[test]
    fn ude_model_is_the_trained_field() {
        use crate::train::rollout::eval_with;
        let mut net = crate::train::init_net_sized::<6, 8, 4>(5);
        net.l3.w = net.l3.w.map(|row| row.map(|w| 10.0 * w));
        let runs = [cc_run(0.1, 1.2, 0.3, 10)];
        let series = cc_series(&runs);
        let norm = crate::train::data::normalisation_of(&series);
        let rec = NetworkRecord {
            known: true,
            hidden: 6,
            inputs: super::super::Base::Cc
                .ude_inputs()
                .iter()
                .map(|s| s.to_string())
                .collect(),
            weights: net.iter().collect(),
            normalisation: norm.iter().collect(),
        };
        let base = ChenCampbell::<f64>::default();
        let mut m = UdeModel::<ChenCampbell<f64>, 4, 8, 6>::new(base, &rec, 1.0, 1e4).unwrap();
        m.set("p", 0.3).unwrap();
        m.set("eta", 0.1).unwrap();
        m.set("g", 1.2).unwrap();
        let known = <ChenCampbell<f64> as UdeBase<4, 8>>::known(&base);
        let x = [0.07, -0.4, 0.012, 0.6];
        let u = [x[0], x[1], x[2], x[3], 0.1, 1.2, 0.3, 0.05];
        let want = eval_with(&net, &norm, Some(&known), &u).f;
        assert_eq!(m.deriv(&x, 0.05), want);
        let alone = UdeModel::<ChenCampbell<f64>, 4, 8, 6>::new(
            base,
            &NetworkRecord {
                known: false,
                ..rec.clone()
            },
            0.3,
            1e4,
        )
        .unwrap();
        let mut alone = alone;
        alone.set("eta", 0.1).unwrap();
        alone.set("g", 1.2).unwrap();
        assert_eq!(alone.deriv(&x, 0.05), eval(&net, &norm, &u).f);
        for (bad, field) in [
            (
                NetworkRecord {
                    hidden: 16,
                    ..rec.clone()
                },
                "hidden",
            ),
            (
                NetworkRecord {
                    weights: rec.weights[1..].to_vec(),
                    ..rec.clone()
                },
                "weights",
            ),
            (
                NetworkRecord {
                    inputs: vec!["r".into()],
                    ..rec.clone()
                },
                "inputs",
            ),
            (
                NetworkRecord {
                    normalisation: vec![f64::NAN; 24],
                    ..rec.clone()
                },
                "normalisation",
            ),
        ] {
            let e = UdeModel::<ChenCampbell<f64>, 4, 8, 6>::new(base, &bad, 1.0, 1e4)
                .unwrap_err()
                .to_string();
            assert!(e.contains(field), "{field}: {e}");
        }
    }

    /// The learned term's sign: the UDE's target is the network's output, a network-only
    /// model's is network minus base. With a network that outputs zero, the first is zero and
    /// the second is minus the base field, column by column of the library (X^T y).
    #[test]
    fn network_only_target_is_network_minus_base() {
        let runs = [cc_run(0.1, 1.2, 0.3, 10)];
        let series = cc_series(&runs);
        let net = Net::<6, 8, 4>::splat(0.0);
        let norm = Normalisation::identity();
        let ude = learned_grams::<ChenCampbell<f64>, 6, 4, 8>(&net, &norm, true, &series).unwrap();
        let alone =
            learned_grams::<ChenCampbell<f64>, 6, 4, 8>(&net, &norm, false, &series).unwrap();
        let m: ChenCampbell<f64> = base_model(&runs[0]).unwrap();
        let k = term_count::<f64, ChenCampbell<f64>, 4>();
        let mut row = vec![0.0; k];
        for i in 0..4 {
            let mut minus_f = Gram::new(k);
            for t in 0..series[0].len() {
                let (x, drive) = (series[0].state(t), series[0].drive(t));
                library_row(&m, 0.3, 1e4, &x, drive, &mut row);
                minus_f.add(&row, -m.deriv(&x, drive)[i], 0.0);
            }
            assert!(ude[i][0].xty.iter().all(|v| *v == 0.0), "equation {i}");
            assert!(minus_f.xty.iter().any(|v| *v != 0.0), "equation {i}");
            assert_eq!(alone[i][0].xty, minus_f.xty, "equation {i}");
        }
    }

    /// The dual-number known part equals the f64 Chen-Campbell field, and its Jacobian matches
    /// central differences (step 1e-6: truncation ~1e-12 |f'''|, rounding ~1e-16/1e-6 = 1e-10;
    /// the field is a quadratic, so 1e-8 absolute is loose for both and tight against any
    /// missing or misplaced entry, which would be O(0.01) or larger).
    #[test]
    fn cc_known_part_and_its_jacobian() {
        let m = ChenCampbell::<f64>::default();
        let k = <ChenCampbell<f64> as UdeBase<4, 8>>::known(&m);
        let u = [0.07, -0.4, 0.012, 0.6, 0.3, 1.4, 0.4, 0.05];
        let (f, jac) = k.field(&u);
        let mm = ChenCampbell {
            eta: u[4],
            g: u[5],
            ..m
        };
        let x = [u[0], u[1], u[2], u[3]];
        assert_eq!(f, mm.deriv(&x, u[7]));
        let h = 1e-6;
        for j in 0..4 {
            let (mut a, mut b) = (x, x);
            a[j] += h;
            b[j] -= h;
            let (fa, fb) = (mm.deriv(&a, u[7]), mm.deriv(&b, u[7]));
            for i in 0..4 {
                let fd = (fa[i] - fb[i]) / (2.0 * h);
                assert!(
                    (fd - jac[i][j]).abs() < 1e-8,
                    "d f{i}/d x{j}: {} vs {fd}",
                    jac[i][j]
                );
            }
        }
    }

    /// The CC UDE's reverse-mode gradient (8 -> 6 -> 6 -> 4 network plus the known field,
    /// 124 weights, 2 substeps) against central differences, as the MPR trainer's test does
    /// (step 1e-5; relative error against max(|g|, 1e-3 max |g|) below 1e-6).
    #[test]
    fn cc_ude_gradient_matches_central_differences() {
        let runs = [cc_run(0.1, 1.2, 0.3, 30), cc_run(0.2, 0.9, 0.7, 30)];
        let series = cc_series(&runs);
        let norm = crate::train::data::normalisation_of(&series);
        let sd: [f64; 4] = core::array::from_fn(|i| norm.in_scale[i]);
        let known = <ChenCampbell<f64> as UdeBase<4, 8>>::known(&ChenCampbell::default());
        let obj = Objective::weighted(0.5, 5, sd, [1.0, 0.25, 0.25, 0.25])
            .with_base(known)
            .with_substeps(2);
        let ws: Vec<Window> = windows(&series, 5, 4).into_iter().take(6).collect();
        assert_eq!(ws.len(), 6);
        // Output weights as large as the hidden ones, so the network term matters.
        let mut net = crate::train::init_net_sized::<6, 8, 4>(3);
        net.l3.w = net.l3.w.map(|row| row.map(|w| 10.0 * w));
        net.l3.b = [0.1, -0.2, 0.05, 0.3];
        let (loss, grad) = batch_loss(&net, &norm, &obj, &series, &ws, true);
        assert!(loss.is_finite() && loss > 0.0);
        let gmax = grad.iter().fold(0.0_f64, |a, g| a.max(g.abs()));
        let h = 1e-5;
        let mut worst = (0.0_f64, 0usize);
        for (k, g) in grad.iter().enumerate() {
            let at = |d: f64| {
                let mut flat: Vec<f64> = net.iter().collect();
                flat[k] += d;
                let n = Net::<6, 8, 4>::from_flat(&flat).unwrap();
                batch_loss(&n, &norm, &obj, &series, &ws, false).0
            };
            let fd = (at(h) - at(-h)) / (2.0 * h);
            let rel = (fd - g).abs() / g.abs().max(1e-3 * gmax);
            if rel > worst.0 {
                worst = (rel, k);
            }
        }
        eprintln!("CC UDE gradient: loss {loss:.4}, max |g| {gmax:.3e}, worst {worst:?}");
        assert!(worst.0 < 1e-6, "{worst:?}");
    }
}
