//! The hoster page (being built).
