//! The programs page (being built).
