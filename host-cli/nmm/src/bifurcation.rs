//! Continuation drivers over core's `continuation` module: branches of equilibria in one
//! parameter from every equilibrium at the start of its range (folds LP, Hopf points H), fold
//! curves in two parameters from every fold (cusps CP), and the path of the cusps as a third
//! parameter varies. The tables and figures of `nmm bifurcation` are drawn from these.

use crate::error::{Result, bail, input};
use crate::fixed_points::DefaultBox;
use nmm_core::Model;
use nmm_core::continuation::{
    Direction, Label, Settings, continue_equilibria, continue_folds, parameter_field,
    parameter_field2,
};
use nmm_core::equilibria::{Equilibria, SearchBox, Stability, equilibria_of_model};
use std::ops::ControlFlow;

/// A labelled point of an equilibrium branch.
///
/// ```
/// use nmm_core::continuation::{Label, Settings};
/// let s = Settings { ds_max: 0.02, ..Settings::default() };
/// let b = nmm::bifurcation::branches(&nmm_core::models::Mpr::<f64>::default(), "eta", [-10.0, 0.0], 0.0, &s)?;
/// let fold = b.points.iter().find(|p| p.label == Label::Fold).unwrap();
/// assert!(fold.lambda > -10.0 && fold.lambda < 0.0);
/// # Ok::<(), nmm::Error>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct BranchPoint<const N: usize> {
    /// Index of the branch (the equilibrium it started from).
    pub branch: usize,
    /// Regular point, fold (LP) or Hopf point (H).
    pub label: Label,
    /// Value of the continued parameter.
    pub lambda: f64,
    /// The equilibrium.
    pub x: [f64; N],
    /// Whether it is stable.
    pub stable: bool,
    /// Leading eigenvalue (re, im).
    pub eig: (f64, f64),
}

/// The branches of [`branches`] and where continuation stopped early.
///
/// ```
/// use nmm_core::continuation::Settings;
/// use nmm::bifurcation::Plane;
/// const PLANE: Plane = Plane { param: "eta", range: [-10.0, 0.0], p2: "J", range2: [0.0, 20.0] };
/// let s = Settings { ds_max: 0.02, ..Settings::default() };
/// let b = nmm::bifurcation::branches(&nmm_core::models::Mpr::<f64>::default(), "eta", [-10.0, 0.0], 0.0, &s)?;
/// assert_eq!(b.starts, 1); // MPR at eta = -10 has one equilibrium
/// assert!(b.stopped.is_empty());
/// # Ok::<(), nmm::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Branches<const N: usize> {
    /// Equilibria found at the start of the range (one branch each).
    pub starts: usize,
    /// Every point of every branch, in order.
    pub points: Vec<BranchPoint<N>>,
    /// Branches whose continuation stopped before the range's end, and why.
    pub stopped: Vec<(usize, String)>,
}

/// A point of a fold curve in two parameters.
///
/// ```
/// use nmm_core::continuation::Settings;
/// use nmm::bifurcation::Plane;
/// const PLANE: Plane = Plane { param: "eta", range: [-10.0, 0.0], p2: "J", range2: [0.0, 20.0] };
/// let m = nmm_core::models::Mpr::<f64>::default();
/// let s = Settings { ds_max: 0.02, ..Settings::default() };
/// let b = nmm::bifurcation::branches(&m, "eta", [-10.0, 0.0], 0.0, &s)?;
/// let c = nmm::bifurcation::fold_curves(&m, &b, PLANE, 0.0, &s)?;
/// assert!(c.points.iter().all(|p| p.lambda[1] >= 0.0 && p.lambda[1] <= 20.0));
/// # Ok::<(), nmm::Error>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct FoldCurvePoint<const N: usize> {
    /// Index of the fold it started from.
    pub fold: usize,
    /// Direction of continuation from it.
    pub direction: Direction,
    /// Regular point or cusp (CP).
    pub label: Label,
    /// The two parameters.
    pub lambda: [f64; 2],
    /// The equilibrium at the fold.
    pub x: [f64; N],
    /// Normal-form coefficient `a` of the fold (zero at a cusp).
    pub normal_form: f64,
}

/// The fold curves of [`fold_curves`].
///
/// ```
/// use nmm_core::continuation::Settings;
/// use nmm::bifurcation::Plane;
/// const PLANE: Plane = Plane { param: "eta", range: [-10.0, 0.0], p2: "J", range2: [0.0, 20.0] };
/// let m = nmm_core::models::Mpr::<f64>::default();
/// let s = Settings { ds_max: 0.02, ..Settings::default() };
/// let b = nmm::bifurcation::branches(&m, "eta", [-10.0, 0.0], 0.0, &s)?;
/// let c = nmm::bifurcation::fold_curves(&m, &b, PLANE, 0.0, &s)?;
/// assert_eq!(c.cusps.len(), 1); // both folds meet at the one cusp
/// # Ok::<(), nmm::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct FoldCurves<const N: usize> {
    /// Every point, curve by curve (fold 0 increasing, fold 0 decreasing, fold 1 ...).
    pub points: Vec<FoldCurvePoint<N>>,
    /// The distinct cusps met, in the order found (both folds of a cusp reach it).
    pub cusps: Vec<(f64, f64)>,
    /// Curves whose continuation stopped early: (fold, direction, why).
    pub stopped: Vec<(usize, Direction, String)>,
}

/// Two parameters and their ranges: `param` (the one of the branches) and `p2`, the plane of the
/// fold curves.
///
/// ```
/// let plane = nmm::bifurcation::Plane { param: "eta", range: [-10.0, 0.0], p2: "J", range2: [0.0, 20.0] };
/// assert_eq!(plane.p2, "J");
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Plane<'a> {
    /// The first parameter (continued along the branches).
    pub param: &'a str,
    /// Its range.
    pub range: [f64; 2],
    /// The second parameter.
    pub p2: &'a str,
    /// Its range.
    pub range2: [f64; 2],
}

/// Every equilibrium of `model` with `param` set to `value`, searched in the model's default
/// box (the starting points of a continuation).
fn equilibria_at<M, const N: usize>(
    model: &M,
    param: &str,
    value: f64,
    input: f64,
) -> Result<Equilibria<f64, N, 16>>
where
    M: Model<f64, N> + Clone + DefaultBox<N>,
{
    let mut start = model.clone();
    start
        .set(param, value)
        .map_err(|e| input!("--range: {param} = {value}: {e}"))?;
    let (lo, hi) = M::BOX;
    let search = SearchBox {
        lo,
        hi,
        points_per_dim: M::GRID,
    };
    Ok(equilibria_of_model::<f64, M, N, 16>(
        &start, input, &search, 1e-11,
    ))
}

/// Branches of equilibria of `model` in `param` over `range`, one from each equilibrium at
/// `range[0]` (drive `input`).
///
/// ```
/// use nmm_core::continuation::{Label, Settings};
/// use nmm_core::models::Mpr;
/// let s = Settings { ds_max: 0.02, ..Settings::default() };
/// let b = nmm::bifurcation::branches(&Mpr::<f64>::default(), "eta", [-10.0, 0.0], 0.0, &s).unwrap();
/// assert_eq!(b.points.iter().filter(|p| p.label == Label::Fold).count(), 2);
/// ```
pub fn branches<M, const N: usize>(
    model: &M,
    param: &str,
    range: [f64; 2],
    input: f64,
    settings: &Settings<f64>,
) -> Result<Branches<N>>
where
    M: Model<f64, N> + Clone + DefaultBox<N>,
{
    model
        .get(param)
        .ok_or_else(|| input!("--param: {} has no parameter {param:?}", M::NAME))?;
    settings.check().map_err(|e| input!("{e}"))?;
    let starts = equilibria_at(model, param, range[0], input)?;
    if starts.is_empty() {
        bail!("no equilibrium found at {param} = {}", range[0]);
    }
    let mut f = parameter_field(model, param, input).map_err(|e| input!("--param {param}: {e}"))?;
    let mut out = Branches {
        starts: starts.len(),
        points: Vec::new(),
        stopped: Vec::new(),
    };
    for (b, e) in starts.points.iter().enumerate() {
        let res = continue_equilibria(&mut f, e.x, range[0], range, settings, &mut |p| {
            out.points.push(BranchPoint {
                branch: b,
                label: p.label,
                lambda: p.lambda,
                x: p.x,
                stable: matches!(p.stability, Stability::Stable),
                eig: p.eigenvalues[0],
            });
            ControlFlow::Continue(())
        });
        if let Err(err) = res {
            out.stopped.push((b, err.to_string()));
        }
    }
    Ok(out)
}

/// Every fold of `branches`, continued both ways in (`param`, `p2`) within the ranges; the
/// cusps met, each once.
///
/// ```
/// use nmm_core::continuation::Settings;
/// use nmm::bifurcation::Plane;
/// const PLANE: Plane = Plane { param: "eta", range: [-10.0, 0.0], p2: "J", range2: [0.0, 20.0] };
/// use nmm_core::models::Mpr;
/// let m = Mpr::<f64>::default();
/// let s = Settings { ds_max: 0.02, ..Settings::default() };
/// let b = nmm::bifurcation::branches(&m, "eta", [-10.0, 0.0], 0.0, &s).unwrap();
/// let c = nmm::bifurcation::fold_curves(&m, &b, PLANE, 0.0, &s).unwrap();
/// // MPR's cusp in closed form (Delta = 1, tau = 1).
/// let (eta, j) = c.cusps[0];
/// let exact = nmm_core::models::mpr::cusp(1.0, 1.0);
/// assert!((j - exact.j).abs() < 1e-6 * exact.j && (eta - exact.eta).abs() < 1e-6, "{j}");
/// ```
pub fn fold_curves<M, const N: usize>(
    model: &M,
    branches: &Branches<N>,
    plane: Plane<'_>,
    input: f64,
    settings: &Settings<f64>,
) -> Result<FoldCurves<N>>
where
    M: Model<f64, N> + Clone,
{
    let Plane {
        param,
        range,
        p2,
        range2,
    } = plane;
    let v2 = model
        .get(p2)
        .ok_or_else(|| input!("--codim2: {} has no parameter {p2:?}", M::NAME))?;
    let mut f2 =
        parameter_field2(model, [param, p2], input).map_err(|e| input!("--codim2: {e}"))?;
    let mut out = FoldCurves {
        points: Vec::new(),
        cusps: Vec::new(),
        stopped: Vec::new(),
    };
    let folds = branches.points.iter().filter(|r| r.label == Label::Fold);
    for (k, fold) in folds.enumerate() {
        for direction in [Direction::Increasing, Direction::Decreasing] {
            let s = Settings {
                direction,
                ..*settings
            };
            let res = continue_folds(
                &mut f2,
                fold.x,
                [fold.lambda, v2],
                [range, range2],
                &s,
                &mut |p| {
                    out.points.push(FoldCurvePoint {
                        fold: k,
                        direction,
                        label: p.label,
                        lambda: p.lambda,
                        x: p.x,
                        normal_form: p.normal_form,
                    });
                    // Both folds of a cusp reach it: keep it once.
                    let new = !out.cusps.iter().any(|c| {
                        (c.0 - p.lambda[0]).abs() <= 1e-6 * (1.0 + c.0.abs())
                            && (c.1 - p.lambda[1]).abs() <= 1e-6 * (1.0 + c.1.abs())
                    });
                    if p.label == Label::Cusp && new {
                        out.cusps.push((p.lambda[0], p.lambda[1]));
                    }
                    ControlFlow::Continue(())
                },
            );
            if let Err(err) = res {
                out.stopped.push((k, direction, err.to_string()));
            }
        }
    }
    Ok(out)
}

/// The cusps in (`param`, `p2`) as the parameter `name` takes each of `values`: one
/// `(value, param, p2)` per cusp found, and the values where continuation stopped early.
///
/// ```
/// use nmm_core::continuation::Settings;
/// use nmm::bifurcation::Plane;
/// const PLANE: Plane = Plane { param: "eta", range: [-10.0, 0.0], p2: "J", range2: [0.0, 20.0] };
/// use nmm_core::models::Mpr;
/// let s = Settings { ds_max: 0.02, ..Settings::default() };
/// let path = nmm::bifurcation::cusp_path(&Mpr::<f64>::default(), ("delta", &[0.5, 1.0]), PLANE, 0.0, &s)
///     .unwrap()
///     .path;
/// assert_eq!(path.len(), 2);
/// // The cusp moves with Delta as the closed form says.
/// for &(delta, _, j) in &path {
///     let exact = nmm_core::models::mpr::cusp(delta, 1.0);
///     assert!((j - exact.j).abs() < 1e-6 * exact.j, "{delta}: {j}");
/// }
/// ```
pub fn cusp_path<M, const N: usize>(
    model: &M,
    (name, values): (&str, &[f64]),
    plane: Plane<'_>,
    input: f64,
    settings: &Settings<f64>,
) -> Result<CuspPath>
where
    M: Model<f64, N> + Clone + DefaultBox<N>,
{
    // What does not depend on the value is checked once, so that only a value's own failure
    // (no equilibrium to start from) is passed over.
    for p in [plane.param, plane.p2, name] {
        model
            .get(p)
            .ok_or_else(|| input!("{} has no parameter {p:?}", M::NAME))?;
    }
    settings.check().map_err(|e| input!("{e}"))?;
    let mut path = Vec::new();
    let mut stopped = Vec::new();
    for &v in values {
        let mut m = model.clone();
        m.set(name, v)
            .map_err(|e| input!("--vary {name} = {v}: {e}"))?;
        // No equilibrium at the range's start for this value: no cusp found, as the CLI says.
        let b = match branches(&m, plane.param, plane.range, input, settings) {
            Ok(b) => b,
            Err(e) => {
                stopped.push(format!("{name} = {v}: {e}"));
                continue;
            }
        };
        let c = fold_curves(&m, &b, plane, input, settings)?;
        for (br, why) in &b.stopped {
            stopped.push(format!("{name} = {v}: branch {br}: {why}"));
        }
        for (k, d, why) in &c.stopped {
            stopped.push(format!("{name} = {v}: fold {k} ({d:?}): {why}"));
        }
        path.extend(c.cusps.iter().map(|&(a, b)| (v, a, b)));
    }
    Ok(CuspPath { path, stopped })
}

/// The cusps of [`cusp_path`].
///
/// ```
/// use nmm_core::continuation::Settings;
/// use nmm::bifurcation::Plane;
/// const PLANE: Plane = Plane { param: "eta", range: [-10.0, 0.0], p2: "J", range2: [0.0, 20.0] };
/// let s = Settings { ds_max: 0.02, ..Settings::default() };
/// let c = nmm::bifurcation::cusp_path(
///     &nmm_core::models::Mpr::<f64>::default(), ("delta", &[1.0]), PLANE, 0.0, &s,
/// )?;
/// assert_eq!(c.path.len(), 1);
/// # Ok::<(), nmm::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct CuspPath {
    /// One `(value, param, p2)` per cusp found, in the order of the values.
    pub path: Vec<(f64, f64, f64)>,
    /// Where continuation stopped early, and why.
    pub stopped: Vec<String>,
}
