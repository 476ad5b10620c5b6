//! The `decode` setting: which frames a camera decodes, as written in `config.toml`.

use std::fmt;
use std::str::FromStr;

/// Which frames a camera decodes (`decode` in `[ingest]` or per camera).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Decode {
    /// Every frame.
    All,
    /// Key frames only, whatever detect fps asks for.
    Keyframes,
    /// Each GOP up to its last analysed frame while the longest recent GOP spans a whole number
    /// of detection intervals (key frames only at one, only the analysed key frames when every
    /// GOP is shorter than one); every frame otherwise, and for streams with B-frames unless
    /// one analysed frame per GOP or fewer.
    #[default]
    Auto,
}
impl FromStr for Decode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "all" => Ok(Self::All),
            "keyframes" => Ok(Self::Keyframes),
            "auto" => Ok(Self::Auto),
            other => Err(format!(
                "expected \"auto\", \"all\" or \"keyframes\", not {other:?}"
            )),
        }
    }
}

impl fmt::Display for Decode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::All => "all",
            Self::Keyframes => "keyframes",
            Self::Auto => "auto",
        })
    }
}
