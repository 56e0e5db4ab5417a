//! The integration tests of this crate, one binary (as cargo's own test suite is): a module per
//! area, so that the crate and its dependencies are linked once.

mod bootstrap;
mod lambda;
mod storm;
