//! Mean-field models: parameter records with units, literature defaults and valid ranges, plus
//! pure derivative functions.
//!
//! Every model implements [`Model`]: `deriv(x, input)` gives `dx/dt` for state `x` and an
//! external input (a stimulus or the network coupling) whose meaning each model documents.
//! Parameters are plain structs with public fields; [`Model::PARAMS`] lists them with names as
//! in REFERENCE.md, units, defaults and ranges, so hosts can set them by name
//! ([`Model::set`]) and record them ([`Model::get`]) without knowing the model.

pub mod cc;
pub mod corrected;
pub mod mpr;
pub mod rww;

use crate::real::Real;
use core::fmt;

pub use cc::ChenCampbell;
pub use corrected::Corrected;
pub use mpr::Mpr;
pub use rww::{Rww, RwwGriffiths};

/// Description of one model parameter.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ParamSpec {
    /// Name as in REFERENCE.md and on the command line (`eta`, `J`, ...).
    pub name: &'static str,
    /// Unit, or `"1"` for dimensionless.
    pub unit: &'static str,
    /// Literature default.
    pub default: f64,
    /// Smallest valid value (`f64::MIN_POSITIVE` stands for "strictly positive").
    pub min: f64,
    /// Largest valid value.
    pub max: f64,
    /// One-line meaning.
    pub doc: &'static str,
}

impl ParamSpec {
    /// Checks `value` against this parameter's range.
    pub fn check(&self, value: f64) -> Result<(), ParamError> {
        if !value.is_finite() {
            return Err(ParamError::NotFinite { name: self.name });
        }
        if value < self.min || value > self.max {
            return Err(ParamError::OutOfRange {
                name: self.name,
                value,
                min: self.min,
                max: self.max,
            });
        }
        Ok(())
    }
}

/// A parameter could not be set or a parameter set is invalid.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ParamError {
    /// No parameter of this name in the model.
    Unknown,
    /// The value is NaN or infinite.
    NotFinite {
        /// Parameter name.
        name: &'static str,
    },
    /// The value lies outside the parameter's valid range.
    OutOfRange {
        /// Parameter name.
        name: &'static str,
        /// Offending value.
        value: f64,
        /// Smallest valid value.
        min: f64,
        /// Largest valid value.
        max: f64,
    },
}

impl fmt::Display for ParamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ParamError::Unknown => f.write_str("unknown parameter"),
            ParamError::NotFinite { name } => write!(f, "parameter {name} must be finite"),
            ParamError::OutOfRange {
                name,
                value,
                min,
                max,
            } => {
                write!(f, "parameter {name} = {value} is outside its valid range ")?;
                if min == f64::MIN_POSITIVE {
                    f.write_str("(0, ")?;
                } else {
                    write!(f, "[{min}, ")?;
                }
                write!(f, "{max}]")
            }
        }
    }
}

impl core::error::Error for ParamError {}

/// A mean-field model: parameters plus a pure vector field on an `N`-variable state.
pub trait Model<T: Real, const N: usize> {
    /// Short name used on the command line (`mpr`, `cc`, `rww`, ...).
    const NAME: &'static str;
    /// State variable names as in REFERENCE.md, in state order.
    const STATE: [&'static str; N];
    /// Index of the variable that couples nodes in a network (a rate or a gating variable).
    const COUPLING_VAR: usize;
    /// Parameter table (name, unit, default, range).
    const PARAMS: &'static [ParamSpec];

    /// `dx/dt` at state `x` with external input `input` (see the model for its meaning).
    fn deriv(&self, x: &[T; N], input: T) -> [T; N];

    /// Additive noise amplitude per state variable (zero unless the model defines noise).
    fn diffusion(&self) -> [T; N] {
        [T::ZERO; N]
    }

    /// A sensible initial state (rest or the literature's initial condition).
    fn initial_state(&self) -> [T; N];

    /// Factor between the network coupling `G sum_j W_ij x_j` and this model's input: 1 for
    /// most models; `J_N` for reduced Wong-Wang (Deco 2014), whose long-range current is
    /// `G J_N sum_j C_ij S_E,j` (REFERENCE section 5).
    #[inline]
    fn coupling_gain(&self) -> T {
        T::ONE
    }

    /// Projects a state onto the model's domain (a rate stays `>= 0`, a gating variable in
    /// `[0, 1]`), as TVB's state-variable boundaries do. The deterministic flow never leaves the
    /// domain; additive noise can, so stochastic steppers apply this after each stage.
    #[inline]
    fn project(&self, x: [T; N]) -> [T; N] {
        x
    }

    /// Value of the parameter called `name`.
    fn get(&self, name: &str) -> Option<T>;

    /// Sets the parameter called `name`, checking its range.
    fn set(&mut self, name: &str, value: T) -> Result<(), ParamError>;

    /// Checks every parameter against its range (and any joint constraint).
    fn validate(&self) -> Result<(), ParamError> {
        for p in Self::PARAMS {
            let v = self.get(p.name).map(Real::to_f64).unwrap_or(f64::NAN);
            p.check(v)?;
        }
        Ok(())
    }
}

/// Defines a parameter struct generic over [`Real`] together with its [`ParamSpec`] table,
/// `Default` (literature values) and name-based get/set, from one list, so the table, the
/// defaults and the docs cannot drift apart.
macro_rules! params {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $(
                $(#[doc = $doc:literal])+
                $field:ident : $key:literal [$unit:literal] = $default:expr, $min:expr => $max:expr;
            )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq)]
        pub struct $name<T> {
            $(
                $(#[doc = $doc])+
                #[doc = ""]
                #[doc = concat!("Name `", $key, "`, unit: ", $unit, "; default ", stringify!($default),
                                "; valid range ", stringify!($min), " ..= ", stringify!($max), ".")]
                pub $field: T,
            )*
        }

        impl<T: $crate::real::Real> Default for $name<T> {
            fn default() -> Self {
                Self { $( $field: T::from_f64($default), )* }
            }
        }

        impl<T: $crate::real::Real> $name<T> {
            /// Parameter table in declaration order.
            pub const SPECS: &'static [$crate::models::ParamSpec] = &[
                $( $crate::models::ParamSpec {
                    name: $key,
                    unit: $unit,
                    default: $default,
                    min: $min,
                    max: $max,
                    doc: concat!($($doc),+),
                }, )*
            ];

            /// Value of the parameter called `name`.
            pub fn get(&self, name: &str) -> Option<T> {
                match name {
                    $( $key => Some(self.$field), )*
                    _ => None,
                }
            }

            /// Sets the parameter called `name` after checking its range.
            pub fn set(&mut self, name: &str, value: T) -> Result<(), $crate::models::ParamError> {
                let spec = Self::SPECS.iter().find(|p| p.name == name)
                    .ok_or($crate::models::ParamError::Unknown)?;
                spec.check(value.to_f64())?;
                match name {
                    $( $key => self.$field = value, )*
                    _ => return Err($crate::models::ParamError::Unknown),
                }
                Ok(())
            }
        }
    };
}
pub(crate) use params;

/// Implements the name-based parts of [`Model`] by forwarding to the `params!`-generated items.
macro_rules! forward_params {
    () => {
        const PARAMS: &'static [$crate::models::ParamSpec] = Self::SPECS;
        fn get(&self, name: &str) -> Option<T> {
            Self::get(self, name)
        }
        fn set(&mut self, name: &str, value: T) -> Result<(), $crate::models::ParamError> {
            Self::set(self, name, value)
        }
    };
}
pub(crate) use forward_params;

/// Small positive number used as "strictly positive" lower bound in parameter tables.
pub(crate) const POS: f64 = f64::MIN_POSITIVE;
/// Shorthand for an unbounded upper limit in parameter tables.
pub(crate) const INF: f64 = f64::INFINITY;
