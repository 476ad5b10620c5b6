//! A camera's latest analysed frame: `/api/v1/cameras/{id}/frame.jpg` (JPEG; `?boxes=1` draws
//! the confirmed tracks' boxes) and `/ui/api/cameras/{id}/boxes` (the same frame's boxes with
//! track ids and floor positions, for the page to label).
//!
//! Input: the still the detector's frame source copied ([`crate::live::Still`]: the model's
//! input picture, at most twice a second per camera) and the tracker's boxes of that frame.
//! Output: the picture brought back to the camera's aspect ratio (at most [`MAX_WIDTH`] wide),
//! people blurred when `[privacy] blur_people` is on, encoded by the `image` crate's JPEG
//! encoder on a query thread.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use image::imageops::{self, FilterType};
use image::{Rgb, RgbImage};
use serde::Deserialize;
use serde_json::json;

use super::super::ApiState;
use super::super::v1::V1Error;
use crate::live::{LiveBox, Still};

/// Widest picture served, pixels.
pub const MAX_WIDTH: u32 = 640;
/// JPEG quality (1-100).
const QUALITY: u8 = 80;
/// Box outline colour.
const BOX: Rgb<u8> = Rgb([255, 200, 0]);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FrameParams {
    #[serde(default)]
    boxes: u8,
    /// Ignored: lets a page ask for a new picture past the browser's cache.
    #[serde(default, rename = "t")]
    _t: Option<i64>,
}

fn missing(id: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({"error": format!("camera {id:?} has no analysed frame yet (or no such camera)")})),
    )
        .into_response()
}

/// `GET /api/v1/cameras/{id}/frame.jpg[?boxes=1]`.
pub(super) async fn jpeg(
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
    params: Result<Query<FrameParams>, QueryRejection>,
) -> Result<Response, V1Error> {
    let Query(p) = params?;
    let Some((still, boxes)) = state.stats.live.still(&id) else {
        return Ok(missing(&id));
    };
    let blur = state.web.blur_people;
    let draw = p.boxes != 0;
    let bytes = tokio::task::spawn_blocking(move || encode(&still, &boxes, blur, draw))
        .await
        .map_err(|_| V1Error::Task)?
        .map_err(|e| V1Error::Write(std::io::Error::other(e)))?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/jpeg"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        bytes,
    )
        .into_response())
}

/// `GET /ui/api/cameras/{id}/boxes`: the latest still's time, source size and boxes.
pub(super) async fn boxes(State(state): State<Arc<ApiState>>, Path(id): Path<String>) -> Response {
    let Some((still, boxes)) = state.stats.live.still(&id) else {
        return missing(&id);
    };
    let list: Vec<_> = boxes
        .iter()
        .map(|b| {
            json!({
                "track": b.track,
                "box": [b.bbox.x, b.bbox.y, b.bbox.w, b.bbox.h],
                "floor": b.floor.map(|(x, y)| [x, y]),
            })
        })
        .collect();
    axum::Json(json!({
        "captured_ms": still.captured_ms,
        "source": [still.source.0, still.source.1],
        "boxes": list,
    }))
    .into_response()
}

/// The still as an RGB picture of the camera's aspect ratio.
pub fn picture(s: &Still) -> RgbImage {
    let (w, h) = s.size;
    let mut img = RgbImage::new(w, h);
    for (y, row) in s.pixels.chunks(s.stride).take(h as usize).enumerate() {
        for (x, px) in row.chunks_exact(3).take(w as usize).enumerate() {
            let c = if s.bgr {
                [px[2], px[1], px[0]]
            } else {
                [px[0], px[1], px[2]]
            };
            img.put_pixel(x as u32, y as u32, Rgb(c));
        }
    }
    let (cx, cy, cw, ch) = s.content;
    let content = imageops::crop_imm(&img, cx, cy, cw.max(1), ch.max(1)).to_image();
    let out_w = s.source.0.clamp(1, MAX_WIDTH);
    let out_h = ((u64::from(out_w) * u64::from(s.source.1)) / u64::from(s.source.0.max(1))).max(1);
    imageops::resize(&content, out_w, out_h as u32, FilterType::Triangle)
}

/// The JPEG of `still`, people blurred (`blur`) and boxes drawn (`draw`).
pub fn encode(
    still: &Still,
    boxes: &[LiveBox],
    blur: bool,
    draw: bool,
) -> Result<Vec<u8>, image::ImageError> {
    let mut img = picture(still);
    let k = f64::from(img.width()) / f64::from(still.source.0.max(1));
    let rects: Vec<(u32, u32, u32, u32)> = boxes.iter().filter_map(|b| rect(b, k, &img)).collect();
    if blur {
        for &(x, y, w, h) in &rects {
            let part = imageops::crop_imm(&img, x, y, w, h).to_image();
            let sigma = (w.min(h) as f32 / 6.0).max(2.0);
            imageops::overlay(&mut img, &imageops::blur(&part, sigma), x.into(), y.into());
        }
    }
    if draw {
        for &r in &rects {
            outline(&mut img, r);
        }
    }
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, QUALITY).encode_image(&img)?;
    Ok(out)
}

/// A box in picture pixels (scale `k` from source pixels), clipped; None when empty.
fn rect(b: &LiveBox, k: f64, img: &RgbImage) -> Option<(u32, u32, u32, u32)> {
    let x0 = (f64::from(b.bbox.x) * k).clamp(0.0, f64::from(img.width() - 1)) as u32;
    let y0 = (f64::from(b.bbox.y) * k).clamp(0.0, f64::from(img.height() - 1)) as u32;
    let x1 = (f64::from(b.bbox.x + b.bbox.w) * k).clamp(0.0, f64::from(img.width())) as u32;
    let y1 = (f64::from(b.bbox.y + b.bbox.h) * k).clamp(0.0, f64::from(img.height())) as u32;
    (x1 > x0 + 1 && y1 > y0 + 1).then(|| (x0, y0, x1 - x0, y1 - y0))
}

/// A 2-pixel outline.
fn outline(img: &mut RgbImage, (x, y, w, h): (u32, u32, u32, u32)) {
    for t in 0..2u32 {
        for i in x..x + w {
            for j in [y + t, (y + h).saturating_sub(1 + t)] {
                img.put_pixel(i, j.min(img.height() - 1), BOX);
            }
        }
        for j in y..y + h {
            for i in [x + t, (x + w).saturating_sub(1 + t)] {
                img.put_pixel(i.min(img.width() - 1), j, BOX);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::BBox;

    fn still(bgr: bool) -> Still {
        Still {
            captured_ms: 1,
            size: (30, 30),
            stride: 90,
            content: (0, 0, 30, 30),
            source: (64, 48),
            bgr,
            pixels: [10u8, 20, 30].repeat(900),
        }
    }

    #[test]
    fn picture_has_the_source_aspect_and_colour_order() {
        let img = picture(&still(false));
        assert_eq!(img.dimensions(), (64, 48));
        assert_eq!(img.get_pixel(5, 5).0, [10, 20, 30]);
        assert_eq!(picture(&still(true)).get_pixel(5, 5).0, [30, 20, 10]);
    }

    #[test]
    fn boxes_are_drawn_and_the_result_is_a_jpeg() {
        let b = LiveBox {
            track: 3,
            bbox: BBox::new(10.0, 10.0, 20.0, 30.0),
            floor: None,
        };
        let jpg = encode(&still(false), &[b], true, true).unwrap();
        assert_eq!(&jpg[..2], &[0xff, 0xd8]);
        let back = image::load_from_memory(&jpg).unwrap().to_rgb8();
        let p = back.get_pixel(10, 20).0;
        assert!(p[0] > 180 && p[1] > 150 && p[2] < 100, "{p:?}");
    }
}
