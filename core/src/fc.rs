//! Streaming FC (to be written).
