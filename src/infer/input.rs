//! The model-input picture as the input tensor wants it, for the local engine and the KServe
//! backend alike.
//!
//! Input: a frame's packed RGB or BGR picture at the model's input size (rows possibly padded
//! to a stride, as GStreamer pads video rows) and the description's layout, element type and
//! scale. Output: the tensor's values, interleaved (NHWC) or one plane per channel (NCHW), as
//! bytes (`u8`) or as floats divided by the scale (`f32`).

use super::model::{InputType, ModelDescription};
use super::resize::Layout;

/// Why a picture does not fit the input tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("picture of {bytes} bytes does not fit input {width}x{height} (3 channels)")]
pub struct Unfit {
    /// Bytes given.
    pub bytes: usize,
    /// Input width.
    pub width: u32,
    /// Input height.
    pub height: u32,
}

/// How to turn pictures into this model's input tensor.
#[derive(Debug, Clone)]
pub struct Packer {
    width: usize,
    height: usize,
    layout: Layout,
    input_type: InputType,
    /// `f32` value of each byte value (pixel / scale).
    table: Box<[f32; 256]>,
}

impl Packer {
    /// The packer for `desc`'s input.
    pub fn new(desc: &ModelDescription) -> Self {
        let mut table = Box::new([0f32; 256]);
        for (v, t) in table.iter_mut().enumerate() {
            *t = v as f32 / desc.input_scale;
        }
        Self {
            width: desc.input_width as usize,
            height: desc.input_height as usize,
            layout: desc.layout,
            input_type: desc.input_type,
            table,
        }
    }

    /// Values in the tensor (width × height × 3).
    pub fn len(&self) -> usize {
        self.width * self.height * 3
    }

    /// Whether the tensor is empty (never, for a loaded description).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The input's element type.
    pub fn input_type(&self) -> InputType {
        self.input_type
    }

    /// Writes `pixels` into a `u8` tensor.
    pub fn fill_u8(&self, pixels: &[u8], dst: &mut [u8]) -> Result<(), Unfit> {
        self.fill(pixels, dst, |v| v)
    }

    /// Writes `pixels` into an `f32` tensor (each value divided by the scale).
    pub fn fill_f32(&self, pixels: &[u8], dst: &mut [f32]) -> Result<(), Unfit> {
        self.fill(pixels, dst, |v| self.table[usize::from(v)])
    }

    /// The tensor as little-endian bytes in its element type (a KServe request's raw contents).
    pub fn to_bytes(&self, pixels: &[u8]) -> Result<Vec<u8>, Unfit> {
        match self.input_type {
            InputType::U8 => {
                let mut out = vec![0u8; self.len()];
                self.fill_u8(pixels, &mut out)?;
                Ok(out)
            }
            InputType::F32 => {
                let mut floats = vec![0f32; self.len()];
                self.fill_f32(pixels, &mut floats)?;
                Ok(floats.iter().flat_map(|f| f.to_le_bytes()).collect())
            }
        }
    }

    /// Copies `pixels` into `dst` in the tensor's layout, converting each value.
    fn fill<T: Copy>(
        &self,
        pixels: &[u8],
        dst: &mut [T],
        conv: impl Fn(u8) -> T,
    ) -> Result<(), Unfit> {
        let (w, h) = (self.width, self.height);
        let row = w * 3;
        let stride = pixels.len().checked_div(h).unwrap_or(0);
        if h == 0 || dst.len() != row * h || stride < row || pixels.len() < stride * (h - 1) + row {
            return Err(Unfit {
                bytes: pixels.len(),
                width: w as u32,
                height: h as u32,
            });
        }
        let rows = (0..h).map(|y| &pixels[y * stride..y * stride + row]);
        match self.layout {
            Layout::Nhwc => {
                for (src, out) in rows.zip(dst.chunks_exact_mut(row)) {
                    for (o, v) in out.iter_mut().zip(src) {
                        *o = conv(*v);
                    }
                }
            }
            Layout::Nchw => {
                let plane = w * h;
                for (y, src) in rows.enumerate() {
                    for (x, px) in src.chunks_exact(3).enumerate() {
                        for (c, v) in px.iter().enumerate() {
                            dst[c * plane + y * w + x] = conv(*v);
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn packer(layout: Layout, input_type: InputType, scale: f32) -> Packer {
        let mut d = ModelDescription::load(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("models/ssdlite.toml"),
        )
        .unwrap();
        (d.input_width, d.input_height, d.layout) = (2, 2, layout);
        (d.input_type, d.input_scale) = (input_type, scale);
        Packer::new(&d)
    }

    // Rows of 6 bytes padded to a stride of 8 (as GStreamer pads video rows).
    const PADDED: [u8; 16] = [1, 2, 3, 4, 5, 6, 0, 0, 7, 8, 9, 10, 11, 12, 0, 0];

    #[test]
    fn packing_removes_row_padding_and_transposes_for_nchw() {
        let p = packer(Layout::Nhwc, InputType::U8, 1.0);
        assert_eq!(
            p.to_bytes(&PADDED).unwrap(),
            [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
        );
        let p = packer(Layout::Nchw, InputType::U8, 1.0);
        assert_eq!(
            p.to_bytes(&PADDED).unwrap(),
            [1, 4, 7, 10, 2, 5, 8, 11, 3, 6, 9, 12]
        );
        assert_eq!(
            p.to_bytes(&PADDED[..11]).unwrap_err().to_string(),
            "picture of 11 bytes does not fit input 2x2 (3 channels)"
        );
    }

    #[test]
    fn f32_inputs_are_scaled_and_little_endian() {
        let p = packer(Layout::Nchw, InputType::F32, 2.0);
        let mut f = [0f32; 12];
        p.fill_f32(&PADDED, &mut f).unwrap();
        assert_eq!(
            f,
            [0.5, 2.0, 3.5, 5.0, 1.0, 2.5, 4.0, 5.5, 1.5, 3.0, 4.5, 6.0]
        );
        let bytes = p.to_bytes(&PADDED).unwrap();
        assert_eq!(bytes.len(), 48);
        assert_eq!(bytes[4..8], 2.0f32.to_le_bytes());
        // A destination of the wrong size is refused, not overrun.
        assert!(p.fill_f32(&PADDED, &mut [0f32; 11]).is_err());
    }
}
