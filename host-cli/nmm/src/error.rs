//! nmm's error type: what went wrong, in classes a caller can act on.
//!
//! - [`Error::Input`]: a file, field, flag or value that cannot be used; the message names it
//!   and says what is wrong (and, where one exists, what would work).
//! - [`Error::Diverged`]: a simulation or an optimisation left the finite numbers; where it
//!   did (time, region, variable) is in the fields. A sampler can reject the draw and go on.
//! - [`Error::Resource`]: a run would need more memory (or another resource) than allowed;
//!   carries the estimate and the way around it.
//! - [`Error::Io`]: reading or writing a file failed; carries the path.
//! - [`Error::Context`]: one of the above, with what was being done when it happened.

use std::fmt;
use std::path::PathBuf;

/// `Result` with nmm's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every failure of the nmm library.
///
/// ```
/// use nmm::Error;
/// let e = nmm::connectome::load("builtin:3", None).unwrap_err();
/// assert!(matches!(e.root(), Error::Input(_)), "{e}");
/// let e = nmm::io::read_series(std::path::Path::new("/no/such.npy")).unwrap_err();
/// assert!(format!("{e:#}").contains("/no/such.npy"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Bad input; the message names the file, field or flag and the problem.
    #[error("{0}")]
    Input(String),
    /// A simulation or optimisation produced non-finite numbers.
    #[error("{message}")]
    Diverged {
        /// When: simulated time in the run's unit (ms for whole-brain runs), or the epoch for
        /// training.
        at: f64,
        /// The region (whole-brain runs), if one is known.
        region: Option<usize>,
        /// The state variable or quantity that stopped being finite.
        variable: String,
        /// The whole explanation, with what to change.
        message: String,
    },
    /// A run would need more of a resource than allowed (memory, values recorded).
    #[error("{message}")]
    Resource {
        /// The estimate, in bytes (or values where `message` says so).
        needed: u64,
        /// The limit it was checked against, same unit.
        limit: u64,
        /// The whole explanation, with the flag or setting that avoids it.
        message: String,
    },
    /// Reading or writing failed.
    // The OS error is part of the message, not a separate cause, so that it is shown once.
    #[error("{}", io_message(.path, .error))]
    Io {
        /// The file, when known.
        path: Option<PathBuf>,
        /// The operating system's error.
        error: std::io::Error,
    },
    /// An error with what was being done when it happened (shown as `context: error`).
    #[error("{context}")]
    Context {
        /// What was being done.
        context: String,
        /// The error.
        #[source]
        source: Box<Error>,
    },
}

fn io_message(path: &Option<PathBuf>, e: &std::io::Error) -> String {
    match path {
        Some(p) => format!("{}: {e}", p.display()),
        None => e.to_string(),
    }
}

impl Error {
    /// An [`Error::Input`] from any message.
    ///
    /// ```
    /// let e = nmm::Error::input("--dt must be positive, got -1");
    /// assert_eq!(e.to_string(), "--dt must be positive, got -1");
    /// ```
    pub fn input(message: impl fmt::Display) -> Self {
        Self::Input(message.to_string())
    }

    /// An [`Error::Io`] naming `path`.
    ///
    /// ```
    /// let e = nmm::Error::io("x.npz", std::io::Error::other("disk full"));
    /// assert_eq!(e.to_string(), "x.npz: disk full");
    /// // The OS error is in the message, not repeated as a cause.
    /// assert!(std::error::Error::source(&e).is_none());
    /// ```
    pub fn io(path: impl Into<PathBuf>, error: std::io::Error) -> Self {
        Self::Io {
            path: Some(path.into()),
            error,
        }
    }

    /// The innermost error, past every [`Error::Context`].
    ///
    /// ```
    /// use nmm::error::Context;
    /// let e = Err::<(), _>(nmm::Error::input("bad"))
    ///     .context("row 3")
    ///     .unwrap_err();
    /// assert!(matches!(e.root(), nmm::Error::Input(_)));
    /// ```
    pub fn root(&self) -> &Error {
        match self {
            Self::Context { source, .. } => source.root(),
            e => e,
        }
    }

    /// The error and its causes on one line, `what: why: ...`, as a person should read it
    /// (`Display` shows only the outermost part, as error types do; this follows the sources).
    ///
    /// ```
    /// use nmm::error::Context;
    /// let e = Err::<(), _>(nmm::Error::input("N: a network needs at least one neuron"))
    ///     .context("grid.toml")
    ///     .unwrap_err();
    /// assert_eq!(e.to_string(), "grid.toml");
    /// assert_eq!(e.report(), "grid.toml: N: a network needs at least one neuron");
    /// ```
    pub fn report(&self) -> String {
        let mut s = self.to_string();
        let mut src = std::error::Error::source(self);
        while let Some(c) = src {
            s += ": ";
            s += &c.to_string();
            src = c.source();
        }
        s
    }

    /// Whether the root cause is a divergence (a sampler rejects such a draw and goes on).
    ///
    /// ```
    /// let e = nmm::Error::Diverged {
    ///     at: 1.5,
    ///     region: Some(3),
    ///     variable: "r".into(),
    ///     message: "diverged".into(),
    /// };
    /// assert!(e.is_divergence());
    /// ```
    pub fn is_divergence(&self) -> bool {
        matches!(self.root(), Self::Diverged { .. })
    }
}

impl From<std::io::Error> for Error {
    fn from(error: std::io::Error) -> Self {
        Self::Io { path: None, error }
    }
}

/// Errors of other crates that mean the input could not be used (a file, matrix or number that
/// does not parse): kept as their message.
macro_rules! input_from {
    ($($t:ty),* $(,)?) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Self {
                Self::Input(e.to_string())
            }
        }
    )*};
}
input_from!(
    nmm_core::ParamError,
    std::num::ParseFloatError,
    std::num::ParseIntError,
    nmm_core::bold::BoldError,
    nmm_core::bold::UnknownPreset,
    nmm_core::brain::BrainError,
    nmm_core::connectome::ConnectomeError,
    nmm_core::connectome::UnknownNormalise,
    nmm_core::continuation::ContinuationError,
    nmm_core::equilibria::NewtonError,
    nmm_core::fc::FcError,
    nmm_core::integrate::UnknownMethod,
    nmm_core::stim::StimParseError,
    ndarray::ShapeError,
    ndarray_npy::ReadNpyError,
    ndarray_npy::ReadNpzError,
    serde_json::Error,
    csv::Error,
    zip::result::ZipError,
);

/// Errors of other crates while writing outputs or setting up threads: I/O-like failures,
/// not bad input, kept as an [`Error::Io`] without a path (the caller adds it as context).
macro_rules! io_from {
    ($($t:ty),* $(,)?) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Self {
                Self::Io {
                    path: None,
                    error: std::io::Error::other(e.to_string()),
                }
            }
        }
    )*};
}
io_from!(
    ndarray_npy::WriteNpyError,
    ndarray_npy::WriteNpzError,
    toml::ser::Error,
    rayon::ThreadPoolBuildError,
);

impl From<nmm_core::sim::Diverged> for Error {
    fn from(e: nmm_core::sim::Diverged) -> Self {
        Self::Diverged {
            at: e.t,
            region: None,
            variable: format!("state variable {}", e.var),
            message: format!("{e}; reduce the integration step"),
        }
    }
}

impl From<nmm_core::sim::SimError> for Error {
    fn from(e: nmm_core::sim::SimError) -> Self {
        match e {
            nmm_core::sim::SimError::Diverged(d) => d.into(),
            other => Self::Input(other.to_string()),
        }
    }
}

/// Adds what was being done to an error, as `anyhow::Context` does.
///
/// ```
/// use nmm::error::Context;
/// let r: Result<(), _> = Err(std::io::Error::other("disk full"));
/// let e = r.context("writing b.npz").unwrap_err();
/// assert_eq!(e.to_string(), "writing b.npz");
/// assert_eq!(std::error::Error::source(&e).unwrap().to_string(), "disk full");
/// ```
pub trait Context<T> {
    /// Wraps the error with `context`.
    fn context<C: fmt::Display>(self, context: C) -> Result<T>;
    /// Wraps the error with the context `f` makes (only on error).
    fn with_context<C: fmt::Display, F: FnOnce() -> C>(self, f: F) -> Result<T>;
}

impl<T, E: Into<Error>> Context<T> for std::result::Result<T, E> {
    fn context<C: fmt::Display>(self, context: C) -> Result<T> {
        self.map_err(|e| Error::Context {
            context: context.to_string(),
            source: Box::new(e.into()),
        })
    }

    fn with_context<C: fmt::Display, F: FnOnce() -> C>(self, f: F) -> Result<T> {
        self.map_err(|e| Error::Context {
            context: f().to_string(),
            source: Box::new(e.into()),
        })
    }
}

/// `Error::Input(format!(...))`.
macro_rules! input {
    ($($t:tt)*) => { $crate::error::Error::Input(format!($($t)*)) };
}
/// Returns `Err(Error::Input(format!(...)))`.
macro_rules! bail {
    ($($t:tt)*) => { return Err($crate::error::Error::Input(format!($($t)*)).into()) };
}
pub(crate) use {bail, input};
