//! squad
