//! Primitives the patterns share.

pub(crate) mod setters;
