//! The ad business before billing: brands, campaigns and their status machine, ad sets, ads
//! and creatives, placements and prices, schedules, the scheduler that drives statuses,
//! serving decisions, and the analytics advertisers read.

pub mod analytics;
pub mod brands;
pub mod campaigns;
pub mod creatives;
pub mod placements;
pub mod pricing;
pub mod schedule;
pub mod scheduler;
pub mod serving;
