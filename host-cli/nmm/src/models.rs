//! The models by name: dispatch from a name or an `.nmmw` file to the model's type, parameters
//! as JSON, and `NAME=VALUE` state specifications.

use crate::error::{Context, Result, bail};
use nmm_core::Model;
use serde_json::{Map, Value, json};

/// Hidden widths of the MLP mean field that nmm compiles (6 -> H -> H -> 2): each is a
/// separate type (const generics), so every command that trains or loads a model dispatches
/// over this list with [`with_hidden!`](crate::with_hidden).
///
/// ```
/// assert!(nmm::models::HIDDEN.contains(&32));
/// ```
pub const HIDDEN: [usize; 3] = [6, 16, 32];

/// Calls `$body` with the const `$H` bound to the hidden width `$h` (one of [`HIDDEN`]); any
/// other width evaluates `$other`.
///
/// ```
/// fn width<const H: usize>() -> usize { H }
/// let w = nmm::with_hidden!(16usize, |H| width::<H>(), 0);
/// assert_eq!(w, 16);
/// assert_eq!(nmm::with_hidden!(7usize, |H| width::<H>(), 0), 0);
/// ```
#[macro_export]
macro_rules! with_hidden {
    ($h:expr, |$H:ident| $body:expr, $other:expr) => {{
        match $h {
            6 => {
                const $H: usize = 6;
                $body
            }
            16 => {
                const $H: usize = 16;
                $body
            }
            32 => {
                const $H: usize = 32;
                $body
            }
            _ => $other,
        }
    }};
}

/// Calls `$body` with `$M` bound to the model type named `$name` and `$N` to its state size;
/// another name returns an [`Error::Input`](crate::Error::Input) from the enclosing function.
///
/// ```
/// fn state_size(name: &str) -> nmm::Result<usize> {
///     Ok(nmm::with_model!(name, |M, N| N))
/// }
/// assert_eq!(state_size("cc")?, 4);
/// assert!(state_size("hh").is_err());
/// # Ok::<(), nmm::Error>(())
/// ```
#[macro_export]
macro_rules! with_model {
    ($name:expr, |$M:ident, $N:ident| $body:expr) => {{
        use nmm_core::models::{ChenCampbell, Mpr, Rww, RwwGriffiths};
        match $name {
            "mpr" => {
                type $M = Mpr<f64>;
                const $N: usize = 2;
                $body
            }
            "cc" => {
                type $M = ChenCampbell<f64>;
                const $N: usize = 4;
                $body
            }
            "rww" => {
                type $M = Rww<f64>;
                const $N: usize = 2;
                $body
            }
            "rww-griffiths" => {
                type $M = RwwGriffiths<f64>;
                const $N: usize = 2;
                $body
            }
            other => {
                return Err($crate::Error::Input(format!(
                    "model {other:?}: expected mpr, cc, rww or rww-griffiths"
                ))
                .into());
            }
        }
    }};
}

/// Reads the weight file `$path` (a `&Path`) and calls `$body` with `$m` bound to it as an
/// `MlpMeanField<$T, H, H>` for the file's hidden width `H`, one of
/// [`HIDDEN`] (const generics need the sizes at compile time, so each width is a
/// separately compiled model). Errors (with `?`) name the file: unreadable, corrupt, or of
/// another shape.
///
/// ```
/// use nmm_core::mlp::{Mlp, MlpMeanField, Normalisation};
/// // A file as `nmm train` writes them (here: a 6-16-16-2 network of zeros), loaded at its width.
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("m.nmmw");
/// let m = MlpMeanField::<f64, 16, 16>::new(Mlp::splat(0.0), Normalisation::identity()).unwrap();
/// let mut bytes = vec![0u8; MlpMeanField::<f64, 16, 16>::encoded_len(2)];
/// let n = m.to_bytes("{}", &mut bytes).unwrap();
/// std::fs::write(&path, &bytes[..n]).unwrap();
/// fn hidden(path: &std::path::Path) -> nmm::Result<usize> {
///     nmm::with_mlp!(f64, path, |m| Ok(m.net().l1.w.len()))
/// }
/// assert_eq!(hidden(&path)?, 16);
/// # Ok::<(), nmm::Error>(())
/// ```
#[macro_export]
macro_rules! with_mlp {
    ($T:ty, $path:expr, |$m:ident| $body:expr) => {{
        let path: &std::path::Path = $path;
        let bytes = std::fs::read(path).map_err(|e| $crate::Error::io(path, e))?;
        let info = nmm_core::mlp::format::inspect(&bytes)
            .map_err(|e| $crate::Error::Input(format!("{}: {e}", path.display())))?;
        let bad = |e| $crate::Error::Input(format!("{}: {e}", path.display()));
        let [i, h1, h2, o] = info.sizes.map(usize::from);
        let shape_error = $crate::Error::Input(format!(
            "{}: layer sizes {i}-{h1}-{h2}-{o}; nmm loads 6-H-H-2 with H in {:?}",
            path.display(),
            $crate::models::HIDDEN
        ));
        if i != 6 || o != 2 || h1 != h2 {
            return Err(shape_error.into());
        }
        $crate::with_hidden!(
            h1,
            |H| {
                let $m =
                    nmm_core::mlp::MlpMeanField::<$T, H, H>::from_bytes(&bytes).map_err(bad)?;
                $body
            },
            return Err(shape_error.into())
        )
    }};
}

/// MPR with `J -> J p`: the mean field of a sparse QIF network of connection probability `p`
/// with weights `J/N` (mean drive `J p r`), the theory the data-driven mean field is compared
/// with and the warm start fits.
///
/// ```
/// use nmm_core::models::Mpr;
/// let m = nmm::models::mpr_with_j_p(&Mpr::<f64>::default(), 0.6);
/// assert_eq!(m.j, 15.0 * 0.6);
/// ```
pub fn mpr_with_j_p(mf: &nmm_core::models::Mpr<f64>, p: f64) -> nmm_core::models::Mpr<f64> {
    nmm_core::models::Mpr { j: mf.j * p, ..*mf }
}

/// Parameters as a JSON object (name -> value) and their units (name -> unit).
///
/// ```
/// let (values, units) = nmm::models::params_json(&nmm_core::models::Mpr::<f64>::default());
/// assert_eq!(values["J"], 15.0);
/// assert!(units["tau"].is_string());
/// ```
pub fn params_json<M: Model<f64, N>, const N: usize>(model: &M) -> (Value, Value) {
    let mut vals = Map::new();
    let mut units = Map::new();
    for p in M::PARAMS {
        vals.insert(p.name.into(), json!(model.get(p.name)));
        units.insert(p.name.into(), json!(p.unit));
    }
    (Value::Object(vals), Value::Object(units))
}

/// Parses `name=value,name=value` for the state variables `names`; unspecified ones keep
/// `default`.
///
/// ```
/// let x = nmm::models::parse_state("v=-1.5", &["r", "v"], [0.1, -2.0])?;
/// assert_eq!(x, [0.1, -1.5]);
/// assert!(nmm::models::parse_state("w=1", &["r", "v"], [0.0; 2]).is_err());
/// # Ok::<(), nmm::Error>(())
/// ```
pub fn parse_state<const N: usize>(
    spec: &str,
    names: &[&str; N],
    default: [f64; N],
) -> Result<[f64; N]> {
    let mut x = default;
    for item in spec.split(',').filter(|s| !s.trim().is_empty()) {
        let Some((k, v)) = item.split_once('=') else {
            bail!(
                "--init: expected NAME=VALUE, got {item:?} (variables: {})",
                names.join(", ")
            );
        };
        let k = k.trim();
        let Some(i) = names.iter().position(|n| *n == k) else {
            bail!(
                "--init: unknown state variable {k:?} (variables: {})",
                names.join(", ")
            );
        };
        let v: f64 = v
            .trim()
            .parse()
            .with_context(|| format!("--init: value of {k} is not a number: {v:?}"))?;
        if !v.is_finite() {
            bail!("--init: value of {k} must be finite");
        }
        x[i] = v;
    }
    Ok(x)
}
