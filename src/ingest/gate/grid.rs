//! The analysis grid: one analysed frame per interval, evenly spaced.

/// Whether a frame at `t` fills the grid's next slot (`slot`, set at the first frame), and if
/// so moves the slot on by `interval`: after a gap the grid restarts at this frame instead of
/// catching up.
pub(super) fn on_grid(slot: &mut Option<u64>, t: u64, interval: u64, early: u64) -> bool {
    let s = *slot.get_or_insert(t);
    if t + early < s {
        return false;
    }
    let next = s + interval;
    *slot = Some(if next + early <= t {
        t + interval
    } else {
        next
    });
    true
}
