//! Balloon-Windkessel BOLD (to be written).
