//! Minimum-cost assignment (Hungarian / Kuhn–Munkres, O(n²m) with potentials) on a dense
//! rows × cols cost matrix, with a gate: pairs costing more than `max_cost` are never matched.

const FORBIDDEN: f64 = 1e9;

/// A matched (row, column) pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Match {
    /// Row index (a track).
    pub row: usize,
    /// Column index (a detection).
    pub col: usize,
}

/// Solves the gated assignment problem. `cost` is row-major, `rows * cols` long.
/// Returns matches sorted by row; pairs above `max_cost` are left unmatched.
pub fn assign(cost: &[f64], rows: usize, cols: usize, max_cost: f64) -> Vec<Match> {
    debug_assert_eq!(cost.len(), rows * cols);
    if rows == 0 || cols == 0 {
        return Vec::new();
    }
    let gated = |r: usize, c: usize| {
        let v = cost[r * cols + c];
        if v > max_cost || v.is_nan() {
            FORBIDDEN
        } else {
            v
        }
    };
    // The algorithm needs n ≤ m: transpose when there are more rows than columns.
    let transpose = rows > cols;
    let (n, m) = if transpose {
        (cols, rows)
    } else {
        (rows, cols)
    };
    let at = |i: usize, j: usize| if transpose { gated(j, i) } else { gated(i, j) };

    // 1-based arrays as in the classic formulation; index 0 is a virtual column.
    let mut u = vec![0.0; n + 1];
    let mut v = vec![0.0; m + 1];
    let mut p = vec![0usize; m + 1];
    let mut way = vec![0usize; m + 1];
    let mut minv = vec![0.0; m + 1];
    let mut used = vec![false; m + 1];
    for i in 1..=n {
        p[0] = i;
        let mut j0 = 0;
        minv.iter_mut().for_each(|x| *x = f64::INFINITY);
        used.iter_mut().for_each(|x| *x = false);
        loop {
            used[j0] = true;
            let i0 = p[j0];
            let mut delta = f64::INFINITY;
            let mut j1 = 0;
            for j in 1..=m {
                if !used[j] {
                    let cur = at(i0 - 1, j - 1) - u[i0] - v[j];
                    if cur < minv[j] {
                        minv[j] = cur;
                        way[j] = j0;
                    }
                    if minv[j] < delta {
                        delta = minv[j];
                        j1 = j;
                    }
                }
            }
            for j in 0..=m {
                if used[j] {
                    u[p[j]] += delta;
                    v[j] -= delta;
                } else {
                    minv[j] -= delta;
                }
            }
            j0 = j1;
            if p[j0] == 0 {
                break;
            }
        }
        loop {
            let j1 = way[j0];
            p[j0] = p[j1];
            j0 = j1;
            if j0 == 0 {
                break;
            }
        }
    }
    let mut out: Vec<Match> = (1..=m)
        .filter(|&j| p[j] != 0)
        .map(|j| {
            let (i, j) = (p[j] - 1, j - 1);
            if transpose {
                Match { row: j, col: i }
            } else {
                Match { row: i, col: j }
            }
        })
        .filter(|mt| gated(mt.row, mt.col) < FORBIDDEN)
        .collect();
    out.sort_by_key(|mt| mt.row);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brute(cost: &[f64], rows: usize, cols: usize, max: f64) -> f64 {
        // Best total over all partial matchings, counting an unmatched row as cost 0 but
        // maximising the number of pairs first (as the gated Hungarian does).
        fn rec(
            r: usize,
            used: &mut Vec<bool>,
            c: &[f64],
            rows: usize,
            cols: usize,
            max: f64,
        ) -> (usize, f64) {
            if r == rows {
                return (0, 0.0);
            }
            let mut best = rec(r + 1, used, c, rows, cols, max);
            for j in 0..cols {
                let v = c[r * cols + j];
                if !used[j] && v <= max {
                    used[j] = true;
                    let (k, s) = rec(r + 1, used, c, rows, cols, max);
                    used[j] = false;
                    let cand = (k + 1, s + v);
                    if cand.0 > best.0 || (cand.0 == best.0 && cand.1 < best.1 - 1e-12) {
                        best = cand;
                    }
                }
            }
            best
        }
        rec(0, &mut vec![false; cols], cost, rows, cols, max).1
    }

    #[test]
    fn picks_the_cheaper_global_assignment() {
        // Greedy would take (0,0)=1 then (1,1)=10; optimal is (0,1)+(1,0) = 4.
        let cost = [1.0, 2.0, 2.0, 10.0];
        let m = assign(&cost, 2, 2, 100.0);
        assert_eq!(m, vec![Match { row: 0, col: 1 }, Match { row: 1, col: 0 }]);
    }

    #[test]
    fn gate_leaves_expensive_pairs_unmatched() {
        let cost = [0.1, 0.95, 0.9, 0.99];
        let m = assign(&cost, 2, 2, 0.8);
        assert_eq!(m, vec![Match { row: 0, col: 0 }]);
    }

    #[test]
    fn rectangular_both_ways_match_brute_force() {
        let mut seed = 7u64;
        let mut rnd = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % 1000) as f64 / 1000.0
        };
        for (rows, cols) in [(3, 5), (5, 3), (4, 4), (1, 6), (6, 1)] {
            for _ in 0..20 {
                let cost: Vec<f64> = (0..rows * cols).map(|_| rnd()).collect();
                let m = assign(&cost, rows, cols, 0.7);
                let total: f64 = m.iter().map(|x| cost[x.row * cols + x.col]).sum();
                assert!((total - brute(&cost, rows, cols, 0.7)).abs() < 1e-9);
            }
        }
    }
}
