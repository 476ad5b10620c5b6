//! Property tests (proptest) of the parsers a user or a network peer feeds: config files,
//! times, the API's query strings, a KServe server's responses, and the capture clock's
//! RTCP / stream timestamps. No input may panic; each answer stays within what the parser
//! promises (a config error with positions, a time in 1970..9999, a 2xx/4xx answer, stamps
//! strictly increasing).

use crate::common;

#[path = "properties/api.rs"]
mod api;
#[path = "properties/clock.rs"]
mod clock;
#[path = "properties/config.rs"]
mod config;
#[path = "properties/kserve.rs"]
mod kserve;
#[path = "properties/times.rs"]
mod times;
