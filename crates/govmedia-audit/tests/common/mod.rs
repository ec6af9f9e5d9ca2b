//! The shared world of identity and audit (`govmedia-world`).

#![allow(dead_code, unused_imports, unreachable_pub)]

pub use govmedia_world::*;
