//! Model descriptions (`models/*.toml`): which IR to load, the input tensor's name, size, resize
//! mode, colour order and layout, the output tensors' names, and the person class. Output names
//! are mapped here once, so the engine never depends on output order (INT8 quantization
//! changes it).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::resize::{ColorOrder, InputSpec, Layout, ResizeMode};

/// Output layouts the engine can parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum ModelFormat {
    /// TensorFlow Object Detection API post-processed SSD outputs.
    #[serde(rename = "tf-ssd")]
    TfSsd,
}

/// Names of the SSD output tensors.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputNames {
    /// `[1, N, 4]` normalized ymin, xmin, ymax, xmax.
    pub boxes: String,
    /// `[1, N]` class ids as floats.
    pub classes: String,
    /// `[1, N]` scores.
    pub scores: String,
    /// `[1]` number of valid rows.
    pub count: String,
}

/// A parsed model description with its IR path resolved.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelDescription {
    /// Human-readable name.
    pub name: String,
    /// IR `.xml`, resolved against the description's folder.
    pub ir: PathBuf,
    /// Output layout.
    pub format: ModelFormat,
    /// Input tensor name.
    pub input: String,
    /// Input width in pixels.
    pub input_width: u32,
    /// Input height in pixels.
    pub input_height: u32,
    /// How frames are fitted to the input (`stretch` or `letterbox`), as the model was trained.
    #[serde(default)]
    pub resize: ResizeMode,
    /// Input channel order (`RGB` or `BGR`).
    #[serde(default)]
    pub color: ColorOrder,
    /// Input tensor layout (`NHWC` or `NCHW`).
    #[serde(default)]
    pub layout: Layout,
    /// Class id meaning person.
    pub person_class: u32,
    /// Output tensor names.
    pub outputs: OutputNames,
}

/// Why a model description could not be used.
#[derive(Debug, thiserror::Error)]
pub enum DescriptionError {
    /// The file could not be read.
    #[error("{path}: cannot read model description: {source}")]
    Read {
        /// Description path.
        path: PathBuf,
        /// I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a valid description.
    #[error("{path}: invalid model description: {message}")]
    Parse {
        /// Description path.
        path: PathBuf,
        /// Parser message.
        message: String,
    },
}

impl ModelDescription {
    /// Reads a description and resolves its IR path.
    pub fn load(path: &Path) -> Result<Self, DescriptionError> {
        let text = std::fs::read_to_string(path).map_err(|source| DescriptionError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut d: ModelDescription =
            toml::from_str(&text).map_err(|e| DescriptionError::Parse {
                path: path.to_path_buf(),
                message: e.message().trim().to_string(),
            })?;
        if d.ir.is_relative() {
            d.ir = path.parent().unwrap_or(Path::new(".")).join(&d.ir);
        }
        Ok(d)
    }

    /// What the pipeline must produce for this model.
    pub fn input_spec(&self) -> InputSpec {
        InputSpec {
            width: self.input_width,
            height: self.input_height,
            resize: self.resize,
            color: self.color,
            layout: self.layout,
        }
    }

    /// The weights file that goes with the IR.
    pub fn weights(&self) -> PathBuf {
        self.ir.with_extension("bin")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_description_parses_and_resolves_ir() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/ssdlite.toml");
        let d = ModelDescription::load(&p).unwrap();
        assert_eq!(d.format, ModelFormat::TfSsd);
        assert_eq!((d.input_width, d.input_height), (300, 300));
        assert_eq!(d.person_class, 1);
        // The TF OD API SSD resizer stretches; feeding it letterboxed frames shrank every box.
        assert_eq!(d.resize, ResizeMode::Stretch);
        assert_eq!((d.color, d.layout), (ColorOrder::Rgb, Layout::Nhwc));
        assert!(d.ir.ends_with("models/ssdlite/ssdlite.xml"));
        assert!(d.weights().ends_with("models/ssdlite/ssdlite.bin"));
        assert_eq!(d.outputs.scores, "detection_scores:0");
    }
}
