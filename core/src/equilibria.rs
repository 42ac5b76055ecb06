//! Equilibria (to be written).
