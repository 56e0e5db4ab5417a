//! Everything the handler crates' tests share, in one place.

pub use valine_clients::testing::*;
pub use valine_domain::testing::*;
pub use valine_store::testing::*;
