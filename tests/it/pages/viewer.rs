//! The viewer page (being built).
