//! The `storetrack render` subcommand: the floor plan (or one camera's view) with the heatmap
//! and trajectories of a time range, written as a PNG.
//!
//! Input: the config (floor, zones, camera homographies: no camera secret unless a frame is
//! grabbed from the camera), the database and a time range. Output: the picture file (written
//! atomically, never over a file that is not a PNG) and a one-line description on stdout.

use std::path::PathBuf;
use std::time::SystemTime;

use anyhow::{Result, bail};
use storetrack::config::ReadConfig;
use storetrack::{query, store};

/// Draws the picture of `from`..`to` (or one camera's view with `camera`) into `out`.
pub fn render(
    config: &std::path::Path,
    db: Option<PathBuf>,
    (from, to): (&str, Option<&str>),
    out: &std::path::Path,
    camera: Option<String>,
    frame: Option<PathBuf>,
) -> Result<()> {
    use storetrack::query::{picture as render, snapshot};
    let cfg = ReadConfig::load(config)?;
    render::check_output(out)?;
    let db = db.unwrap_or_else(|| cfg.storage.db.clone());
    let conn = store::open_read_only(&db)?;
    let now = SystemTime::now();
    let from_ms = query::parse_time(from, now)?;
    let to_ms = match to {
        Some(t) => query::parse_time(t, now)?,
        None => query::parse_time("0s", now)?,
    };
    let drawn = match camera {
        Some(id) => {
            let Some(cam) = cfg.camera(&id) else {
                bail!("{}: no camera {id:?} in the config", config.display());
            };
            let picture = match frame {
                Some(f) => render::load_frame(&f)?,
                None => snapshot::grab(&cam.url(config)?)?,
            };
            render::camera_picture(
                &conn,
                &id,
                picture,
                cam.homography.as_ref(),
                &cfg.zones,
                (from_ms, to_ms),
                out,
            )?
        }
        None => {
            let Some(floor) = &cfg.floor else {
                bail!(
                    "{}: no [floor] table (width and height in metres) to draw",
                    config.display()
                );
            };
            render::floor_picture(&conn, floor, &cfg.zones, from_ms, to_ms, out)?
        }
    };
    println!(
        "{} ({}x{} px, {} trajectories, {} points)",
        out.display(),
        drawn.size.0,
        drawn.size.1,
        drawn.tracks,
        drawn.points
    );
    Ok(())
}
