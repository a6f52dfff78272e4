//! The advertiser page (being built).
