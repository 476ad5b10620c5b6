//! The `storetrack check-config` subcommand: load a config file (every problem, each with its
//! position) and say what it found: cameras and their calibration, the floor, the API.

use std::path::Path;

use anyhow::Result;
use storetrack::config::Config;

/// Checks `config` and prints what it describes.
pub(crate) fn check_config(config: &Path) -> Result<()> {
    let cfg = Config::load(config)?;
    println!("{}: ok ({} cameras)", config.display(), cfg.cameras.len());
    for cam in &cfg.cameras {
        match (&cam.calibration, &cam.homography) {
            (Some(c), _) => println!(
                "  {}: calibrated from {} point pairs, reprojection error rms {:.3} m, max {:.3} m (pair {})",
                cam.id,
                c.pairs,
                c.rms_m,
                c.max_m,
                c.worst + 1
            ),
            (None, Some(_)) => println!("  {}: homography given", cam.id),
            (None, None) => println!("  {}: not calibrated (no floor positions)", cam.id),
        }
    }
    if let Some(f) = &cfg.floor {
        println!(
            "  floor: {} x {} m, {} zones",
            f.width_m,
            f.height_m,
            cfg.zones.len()
        );
    }
    for line in storetrack::config::describe_footfall(&cfg.footfall) {
        println!("  {line}");
    }
    if let Some(api) = &cfg.api {
        println!("  api: {}", super::query::describe_api(api));
    }
    if let Some(events) = &cfg.events {
        println!("  events: {}", events.describe());
    }
    Ok(())
}
