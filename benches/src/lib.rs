//! Benchmarks of nmm live in `benches/`; this library is empty.
