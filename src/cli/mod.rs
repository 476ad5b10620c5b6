//! The binary's subcommand handlers, one per subcommand (`main.rs` parses the arguments):
//! `run`/`reload` ([`run`]), `check-config` ([`check`]), `query` ([`query`]), `render`
//! ([`render`]), `simcam` ([`simcam`]), and the development commands `track`/`synth`
//! ([`tools`]).

pub(crate) mod check;
pub(crate) mod query;
pub(crate) mod render;
pub(crate) mod run;
pub(crate) mod simcam;
pub(crate) mod tools;
