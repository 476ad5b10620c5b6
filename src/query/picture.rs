//! Pictures of the store: the floor plan (the plan image, or a drawn grid with zone outlines and
//! names) with a heatmap of where people were and the store trajectories of a time range; or
//! one camera's tracks over a frame from that camera.
//!
//! Input: a read-only connection, the floor and zones from the config, a time range. Output: a
//! PNG. Drawing is done with the `image` crate (PNG/JPEG I/O) and `ab_glyph` (labels from a
//! system TrueType font); lines and polygons are drawn here.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use ab_glyph::FontVec;
use image::{ImageEncoder, Rgb, RgbImage};
use rusqlite::{Connection, params};

mod draw;

use crate::analytics::Zone;
use crate::config::FloorConfig;
use draw::{box_blur, heat_colour, label, palette, polyline};

/// Fonts tried for labels, in order (Debian `fonts-dejavu-core`, installed by setup).
pub const FONT_PATHS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSansCondensed.ttf",
];
/// Largest picture side, pixels (plan images read, drawn plans and camera frames): 8192² RGB
/// is 192 MiB, what a box can spare for a moment.
pub const MAX_PICTURE_PX: u32 = 8192;
/// Most bytes the image decoder may allocate for one picture read.
const MAX_DECODE_BYTES: u64 = 512 << 20;
/// Margin around a drawn plan, pixels.
const MARGIN_PX: u32 = 30;
/// Heatmap cell size, metres (larger on floors wider than this many cells)...
const HEAT_CELL_M: f64 = 0.25;
/// ...so the heatmap has at most this many cells a side.
const MAX_HEAT_CELLS: f64 = 2048.0;
/// Box-blur passes over the heatmap (≈ a Gaussian of a few cells).
const HEAT_BLUR_PASSES: usize = 3;
/// Strongest heatmap opacity.
const HEAT_ALPHA: f64 = 0.75;
/// Longest a store trajectory can last (bounds the range lookup, as in the queries).
const MAX_TRACK_MS: i64 = 24 * 3_600_000;

/// Why a picture could not be made.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// Reading the database failed.
    #[error("database: {0}")]
    Sql(#[from] rusqlite::Error),
    /// An image could not be read or written.
    #[error("{}: {source}", path.display())]
    Image {
        /// The file.
        path: PathBuf,
        /// What failed.
        #[source]
        source: image::ImageError,
    },
    /// No font for the labels.
    #[error("no label font found (install fonts-dejavu-core; tried {})", FONT_PATHS.join(", "))]
    NoFont,
    /// The picture asked for would be larger than [`MAX_PICTURE_PX`] a side.
    #[error("{what}: the picture would be {w:.0} x {h:.0} px; at most {MAX_PICTURE_PX} px a side")]
    TooLarge {
        /// What asked for it.
        what: String,
        /// Width asked for.
        w: f64,
        /// Height asked for.
        h: f64,
    },
    /// The output path is not a file a picture may replace.
    #[error("{}: {reason}; nothing written", path.display())]
    Output {
        /// The output path.
        path: PathBuf,
        /// Why not.
        reason: &'static str,
    },
    /// Writing the output failed.
    #[error("{}: cannot write: {source}", path.display())]
    Write {
        /// The output path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// Side of a drawn plan in pixels: `metres` at `scale` plus the margins.
pub fn drawn_side_px(metres: f64, scale: f64) -> f64 {
    (metres * scale).ceil() + f64::from(2 * MARGIN_PX)
}

/// What was drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Drawn {
    /// Picture size.
    pub size: (u32, u32),
    /// Trajectories drawn.
    pub tracks: usize,
    /// Points drawn.
    pub points: usize,
}

/// Floor metres → picture pixels.
#[derive(Debug, Clone, Copy)]
struct View {
    scale: f64,
    origin: (f64, f64),
}

impl View {
    fn px(&self, (x, y): (f64, f64)) -> (f64, f64) {
        (
            self.origin.0 + x * self.scale,
            self.origin.1 + y * self.scale,
        )
    }
}

/// Draws the floor picture for `[from_ms, to_ms]` into `out`.
pub fn floor_picture(
    conn: &Connection,
    floor: &FloorConfig,
    zones: &[Zone],
    from_ms: i64,
    to_ms: i64,
    out: &Path,
) -> Result<Drawn, RenderError> {
    let font = load_font()?;
    let (mut img, view) = match &floor.plan {
        Some(p) => {
            let img = load_frame(p)?;
            let view = View {
                scale: floor.scale_px_per_m,
                origin: floor.origin_px,
            };
            (img, view)
        }
        None => drawn_plan(floor, &font)?,
    };
    let tracks = store_paths(conn, from_ms, to_ms)?;
    heatmap(&mut img, &view, floor, &tracks);
    for (i, (_, pts)) in tracks.iter().enumerate() {
        let c = palette(i);
        let px: Vec<(f64, f64)> = pts.iter().map(|p| view.px(*p)).collect();
        polyline(&mut img, &px, c, 1);
    }
    for z in zones {
        let px: Vec<(f64, f64)> = z.polygon.iter().map(|p| view.px(*p)).collect();
        let mut closed = px.clone();
        closed.push(px[0]);
        polyline(&mut img, &closed, Rgb([20, 60, 160]), 2);
        let (cx, cy) = view.px(z.centre());
        label(&mut img, &font, &z.name, (cx, cy), Rgb([20, 60, 160]));
    }
    let title = format!(
        "{} - {}   {} trajectories",
        crate::query::format_time(from_ms),
        crate::query::format_time(to_ms),
        tracks.len()
    );
    let mid = f64::from(img.width()) / 2.0;
    label(&mut img, &font, &title, (mid, 12.0), Rgb([0, 0, 0]));
    save(&img, out)?;
    Ok(Drawn {
        size: img.dimensions(),
        tracks: tracks.len(),
        points: tracks.iter().map(|t| t.1.len()).sum(),
    })
}

/// One camera's tracks (foot points) over `frame`, with the zones drawn through the inverse
/// of the camera's homography when it has one.
pub fn camera_picture(
    conn: &Connection,
    camera: &str,
    mut frame: RgbImage,
    image_to_floor: Option<&[f64; 9]>,
    zones: &[Zone],
    (from_ms, to_ms): (i64, i64),
    out: &Path,
) -> Result<Drawn, RenderError> {
    let font = load_font()?;
    let mut stmt = conn.prepare(
        "SELECT t.id, p.x + p.w / 2, p.y + p.h FROM tracks t JOIN points p ON p.track = t.id
         WHERE t.camera = ?1 AND t.first_ms BETWEEN ?2 - ?4 AND ?3 AND t.last_ms >= ?2
           AND p.ts_ms BETWEEN ?2 AND ?3
         ORDER BY t.id, p.ts_ms",
    )?;
    let rows = stmt.query_map(params![camera, from_ms, to_ms, MAX_TRACK_MS], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, f64>(1)?,
            r.get::<_, f64>(2)?,
        ))
    })?;
    let tracks = group(rows.collect::<rusqlite::Result<Vec<_>>>()?);
    for (i, (_, pts)) in tracks.iter().enumerate() {
        polyline(&mut frame, pts, palette(i), 1);
        // Where the track was last: a dot (also the whole track when it has one point).
        if let Some(&last) = pts.last() {
            polyline(&mut frame, &[last, last], palette(i), 3);
        }
    }
    if let Some(floor_to_image) = image_to_floor.and_then(invert3) {
        for z in zones {
            let mut px: Vec<(f64, f64)> = z
                .polygon
                .iter()
                .filter_map(|&(x, y)| {
                    crate::geometry::apply_homography(&floor_to_image, (x as f32, y as f32))
                })
                .collect();
            if px.len() == z.polygon.len() {
                px.push(px[0]);
                polyline(&mut frame, &px, Rgb([40, 90, 255]), 2);
                let n = z.polygon.len() as f64;
                let c = px[..z.polygon.len()]
                    .iter()
                    .fold((0.0, 0.0), |a, p| (a.0 + p.0 / n, a.1 + p.1 / n));
                label(&mut frame, &font, &z.name, c, Rgb([40, 90, 255]));
            }
        }
    }
    let title = format!("{camera}: {} tracks", tracks.len());
    let mid = f64::from(frame.width()) / 2.0;
    label(&mut frame, &font, &title, (mid, 12.0), Rgb([255, 255, 0]));
    save(&frame, out)?;
    Ok(Drawn {
        size: frame.dimensions(),
        tracks: tracks.len(),
        points: tracks.iter().map(|t| t.1.len()).sum(),
    })
}

/// Reads a PNG or JPEG picture of at most [`MAX_PICTURE_PX`] a side (the decoder refuses a
/// larger one before allocating it).
pub fn load_frame(path: &Path) -> Result<RgbImage, RenderError> {
    let image = |source| RenderError::Image {
        path: path.to_path_buf(),
        source,
    };
    let mut reader = image::ImageReader::open(path)
        .map_err(|e| image(image::ImageError::IoError(e)))?
        .with_guessed_format()
        .map_err(|e| image(image::ImageError::IoError(e)))?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_PICTURE_PX);
    limits.max_image_height = Some(MAX_PICTURE_PX);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    Ok(reader.decode().map_err(image)?.to_rgb8())
}

/// The eight bytes every PNG file starts with.
const PNG_SIGNATURE: &[u8; 8] = b"\x89PNG\r\n\x1a\n";

/// Writes `img` as a PNG at `out` atomically: into a new file (mode 0600: the picture shows
/// where people walked) in the same folder, renamed over `out` once complete. An existing
/// `out` is replaced only if it is a PNG file; a symbolic link or any other file is refused.
pub fn save(img: &RgbImage, out: &Path) -> Result<(), RenderError> {
    check_output(out)?;
    let write = |source| RenderError::Write {
        path: out.to_path_buf(),
        source,
    };
    let dir = out
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".storetrack-")
        .suffix(".png.tmp")
        .tempfile_in(dir)
        .map_err(write)?;
    {
        let mut buf = std::io::BufWriter::new(tmp.as_file_mut());
        image::codecs::png::PngEncoder::new(&mut buf)
            .write_image(
                img,
                img.width(),
                img.height(),
                image::ExtendedColorType::Rgb8,
            )
            .map_err(|source| RenderError::Image {
                path: out.to_path_buf(),
                source,
            })?;
        buf.flush().map_err(write)?;
    }
    tmp.as_file().sync_all().map_err(write)?;
    tmp.persist(out).map_err(|e| write(e.error))?;
    Ok(())
}

/// Whether a picture may be written at `out`: nothing there, or a PNG file (not a link).
pub fn check_output(out: &Path) -> Result<(), RenderError> {
    let refuse = |reason| RenderError::Output {
        path: out.to_path_buf(),
        reason,
    };
    match std::fs::symlink_metadata(out) {
        Ok(m) if m.file_type().is_symlink() => return Err(refuse("is a symbolic link")),
        Ok(m) if !m.is_file() => return Err(refuse("exists and is not a file")),
        Ok(_) => {
            let mut head = [0u8; 8];
            let is_png = std::fs::File::open(out)
                .and_then(|mut f| f.read_exact(&mut head))
                .is_ok_and(|()| &head == PNG_SIGNATURE);
            if !is_png {
                return Err(refuse("exists and is not a PNG file"));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(RenderError::Write {
                path: out.to_path_buf(),
                source: e,
            });
        }
    }
    Ok(())
}

fn load_font() -> Result<FontVec, RenderError> {
    FONT_PATHS
        .iter()
        .filter_map(|p| std::fs::read(p).ok())
        .find_map(|bytes| FontVec::try_from_vec(bytes).ok())
        .ok_or(RenderError::NoFont)
}

/// Store trajectories overlapping the range, points inside it, in floor metres.
fn store_paths(conn: &Connection, from_ms: i64, to_ms: i64) -> rusqlite::Result<Vec<Path2>> {
    let mut stmt = conn.prepare(
        "SELECT t.id, p.x, p.y FROM store_tracks t JOIN store_points p ON p.store_track = t.id
         WHERE t.first_ms BETWEEN ?1 - ?3 AND ?2 AND t.last_ms >= ?1
           AND p.ts_ms BETWEEN ?1 AND ?2
         ORDER BY t.id, p.ts_ms",
    )?;
    let rows = stmt.query_map(params![from_ms, to_ms, MAX_TRACK_MS], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })?;
    Ok(group(rows.collect::<rusqlite::Result<Vec<_>>>()?))
}

/// A trajectory's id and its points.
type Path2 = (i64, Vec<(f64, f64)>);

fn group(rows: Vec<(i64, f64, f64)>) -> Vec<Path2> {
    let mut out: Vec<Path2> = Vec::new();
    for (id, x, y) in rows {
        match out.last_mut() {
            Some((last, pts)) if *last == id => pts.push((x, y)),
            _ => out.push((id, vec![(x, y)])),
        }
    }
    out
}

/// A white canvas with a 1 m grid (5 m lines darker), the floor's outline and a scale note;
/// refused when larger than [`MAX_PICTURE_PX`] a side.
fn drawn_plan(floor: &FloorConfig, font: &FontVec) -> Result<(RgbImage, View), RenderError> {
    let s = floor.scale_px_per_m;
    let (w, h) = (
        drawn_side_px(floor.width_m, s),
        drawn_side_px(floor.height_m, s),
    );
    let max = f64::from(MAX_PICTURE_PX);
    if !(w.is_finite() && h.is_finite() && w <= max && h <= max) {
        return Err(RenderError::TooLarge {
            what: format!("floor {} x {} m at {s} px/m", floor.width_m, floor.height_m),
            w,
            h,
        });
    }
    let (w, h) = (w as u32, h as u32);
    let mut img = RgbImage::from_pixel(w, h, Rgb([250, 250, 247]));
    let view = View {
        scale: s,
        origin: (f64::from(MARGIN_PX), f64::from(MARGIN_PX)),
    };
    for i in 0..=floor.width_m.floor() as i64 {
        let x = i as f64;
        let c = if i % 5 == 0 {
            Rgb([190, 190, 190])
        } else {
            Rgb([225, 225, 225])
        };
        polyline(
            &mut img,
            &[view.px((x, 0.0)), view.px((x, floor.height_m))],
            c,
            1,
        );
    }
    for j in 0..=floor.height_m.floor() as i64 {
        let y = j as f64;
        let c = if j % 5 == 0 {
            Rgb([190, 190, 190])
        } else {
            Rgb([225, 225, 225])
        };
        polyline(
            &mut img,
            &[view.px((0.0, y)), view.px((floor.width_m, y))],
            c,
            1,
        );
    }
    let (fw, fh) = (floor.width_m, floor.height_m);
    let outline = [(0.0, 0.0), (fw, 0.0), (fw, fh), (0.0, fh), (0.0, 0.0)].map(|p| view.px(p));
    polyline(&mut img, &outline, Rgb([90, 90, 90]), 2);
    let note = format!("{fw} x {fh} m, grid 1 m");
    label(
        &mut img,
        font,
        &note,
        (f64::from(w) / 2.0, f64::from(h) - 12.0),
        Rgb([90, 90, 90]),
    );
    Ok((img, view))
}

/// Time spent per floor cell, blurred, coloured and blended over the picture.
fn heatmap(
    img: &mut RgbImage,
    view: &View,
    floor: &FloorConfig,
    tracks: &[(i64, Vec<(f64, f64)>)],
) {
    let cell = HEAT_CELL_M.max(floor.width_m.max(floor.height_m) / MAX_HEAT_CELLS);
    let (gw, gh) = (
        (floor.width_m / cell).ceil() as usize + 1,
        (floor.height_m / cell).ceil() as usize + 1,
    );
    let mut grid = vec![0.0f64; gw * gh];
    for (_, pts) in tracks {
        for &(x, y) in pts {
            let (i, j) = ((x / cell).floor(), (y / cell).floor());
            if i >= 0.0 && j >= 0.0 && (i as usize) < gw && (j as usize) < gh {
                grid[j as usize * gw + i as usize] += 1.0;
            }
        }
    }
    for _ in 0..HEAT_BLUR_PASSES {
        grid = box_blur(&grid, gw, gh);
    }
    let max = grid.iter().copied().fold(0.0, f64::max);
    if max <= 0.0 {
        return;
    }
    let (w, h) = img.dimensions();
    for py in 0..h {
        for px in 0..w {
            let x = (f64::from(px) - view.origin.0) / view.scale;
            let y = (f64::from(py) - view.origin.1) / view.scale;
            if x < 0.0 || y < 0.0 || x > floor.width_m || y > floor.height_m {
                continue;
            }
            let (i, j) = ((x / cell) as usize, (y / cell) as usize);
            let v = (grid[j.min(gh - 1) * gw + i.min(gw - 1)] / max).sqrt();
            if v < 0.02 {
                continue;
            }
            let c = heat_colour(v);
            let a = HEAT_ALPHA * v.min(1.0);
            let p = img.get_pixel_mut(px, py);
            for (ch, target) in p.0.iter_mut().zip(c) {
                *ch = (f64::from(*ch) * (1.0 - a) + f64::from(target) * a).round() as u8;
            }
        }
    }
}

fn invert3(m: &[f64; 9]) -> Option<[f64; 9]> {
    let det = m[0] * (m[4] * m[8] - m[5] * m[7]) - m[1] * (m[3] * m[8] - m[5] * m[6])
        + m[2] * (m[3] * m[7] - m[4] * m[6]);
    if det.abs() < 1e-15 {
        return None;
    }
    let i = |a: f64| a / det;
    Some([
        i(m[4] * m[8] - m[5] * m[7]),
        i(m[2] * m[7] - m[1] * m[8]),
        i(m[1] * m[5] - m[2] * m[4]),
        i(m[5] * m[6] - m[3] * m[8]),
        i(m[0] * m[8] - m[2] * m[6]),
        i(m[2] * m[3] - m[0] * m[5]),
        i(m[3] * m[7] - m[4] * m[6]),
        i(m[1] * m[6] - m[0] * m[7]),
        i(m[0] * m[4] - m[1] * m[3]),
    ])
}
