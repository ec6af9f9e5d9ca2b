//! The `govmedia` binary's library: `up` runs the whole system in one process; `cli`
//! holds the operators' commands. The
//! binary (`src/main.rs`) dispatches the command line to it and to each service's
//! `serve()`.

pub mod cli;
pub mod up;
