//! Shared helpers for the examples (being written).
