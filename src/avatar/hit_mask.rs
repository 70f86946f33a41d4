//! Which window pixels catch the mouse: those the last rendered frame drew (the avatar and any
//! open egui panel), read from the alpha of a captured frame. Bevy-free so it is tested on
//! real snapshots.

/// Alpha of each window pixel (physical pixels, row-major) from the last capture.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HitMask {
    width: u32,
    height: u32,
    alpha: Vec<u8>,
}

impl HitMask {
    /// Alpha below this lets the click through (antialiased edges count as outside).
    pub const THRESHOLD: u8 = 32;
    /// Pixels around the cursor that also count, so thin parts stay easy to grab.
    pub const RADIUS: i64 = 2;

    /// From RGBA8 pixels; `None` when the size does not match.
    pub fn from_rgba(width: u32, height: u32, rgba: &[u8]) -> Option<Self> {
        if rgba.len() != width as usize * height as usize * 4 {
            return None;
        }
        Some(Self {
            width,
            height,
            alpha: rgba.as_chunks::<4>().0.iter().map(|p| p[3]).collect(),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.alpha.is_empty()
    }

    pub fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    /// True when something is drawn at or next to (x, y), in physical window pixels.
    pub fn hit(&self, x: f32, y: f32) -> bool {
        if !x.is_finite() || !y.is_finite() {
            return false;
        }
        let (cx, cy) = (x.floor() as i64, y.floor() as i64);
        let (w, h) = (i64::from(self.width), i64::from(self.height));
        for dy in -Self::RADIUS..=Self::RADIUS {
            for dx in -Self::RADIUS..=Self::RADIUS {
                let (px, py) = (cx + dx, cy + dy);
                if px < 0 || py < 0 || px >= w || py >= h {
                    continue;
                }
                let index = usize::try_from(py * w + px).unwrap_or(usize::MAX);
                if self.alpha.get(index).is_some_and(|a| *a >= Self::THRESHOLD) {
                    return true;
                }
            }
        }
        false
    }

    /// How many pixels are drawn (alpha at or above [`Self::THRESHOLD`]) outside `exclude`
    /// (min and max corners, physical pixels, max exclusive: where egui panels are).
    pub fn drawn_outside(&self, exclude: Option<([u32; 2], [u32; 2])>) -> usize {
        let width = self.width.max(1) as usize;
        self.alpha
            .iter()
            .enumerate()
            .filter(|(index, alpha)| {
                let (x, y) = ((index % width) as u32, (index / width) as u32);
                **alpha >= Self::THRESHOLD
                    && !exclude.is_some_and(|(min, max)| {
                        x >= min[0] && y >= min[1] && x < max[0] && y < max[1]
                    })
            })
            .count()
    }

    /// The drawn pixels, and those within [`Self::RADIUS`] of one, as rectangles
    /// `[x, y, width, height]` covering them, for a Wayland input region: the mask is cut into
    /// squares of `cell` physical pixels, a square is kept when it holds such a pixel, kept
    /// squares side by side make a run, and runs spanning the same columns in consecutive rows
    /// one rectangle. Surface coordinates: physical pixels divided by `scale` (the window's
    /// scale factor), rounded outwards so nothing drawn is left out.
    pub fn rectangles(&self, cell: u32, scale: f32) -> Vec<[i32; 4]> {
        let c = cell.max(1) as usize;
        let (w, h) = (self.width as usize, self.height as usize);
        let (cols, rows) = (w.div_ceil(c), h.div_ceil(c));
        let radius = Self::RADIUS as usize;
        let mut kept = vec![false; cols * rows];
        for (index, alpha) in self.alpha.iter().enumerate() {
            if *alpha < Self::THRESHOLD {
                continue;
            }
            let (x, y) = (index % w.max(1), index / w.max(1));
            let (c0, c1) = (x.saturating_sub(radius) / c, (x + radius).min(w - 1) / c);
            let (r0, r1) = (y.saturating_sub(radius) / c, (y + radius).min(h - 1) / c);
            for row in r0..=r1 {
                kept[row * cols + c0..=row * cols + c1].fill(true);
            }
        }
        // Runs of kept squares per row, as [first, end) columns.
        let runs = |row: usize| -> Vec<(usize, usize)> {
            let line = &kept[row * cols..(row + 1) * cols];
            let mut runs = Vec::new();
            let mut col = 0;
            while col < cols {
                if line[col] {
                    let start = col;
                    while col < cols && line[col] {
                        col += 1;
                    }
                    runs.push((start, col));
                } else {
                    col += 1;
                }
            }
            runs
        };
        // Open rectangles: a run and the row it started in; closed when the next row lacks it.
        let mut open: Vec<((usize, usize), usize)> = Vec::new();
        let mut cells = Vec::new();
        for row in 0..=rows {
            let now = if row < rows { runs(row) } else { Vec::new() };
            open.retain(|&(run, start)| {
                let goes_on = now.contains(&run);
                if !goes_on {
                    cells.push((run, start, row));
                }
                goes_on
            });
            for run in now {
                if !open.iter().any(|(open_run, _)| *open_run == run) {
                    open.push((run, row));
                }
            }
        }
        cells
            .into_iter()
            .map(|((first, end), top, bottom)| {
                let min = [(first * c).min(w) as u32, (top * c).min(h) as u32];
                let max = [(end * c).min(w) as u32, (bottom * c).min(h) as u32];
                Self::surface_rectangle(min, max, scale)
            })
            .collect()
    }

    /// Physical pixels from `min` to `max` (exclusive) as a rectangle `[x, y, width, height]`
    /// in surface pixels (divided by `scale`, rounded outwards; a scale that makes no sense
    /// counts as 1).
    fn surface_rectangle(min: [u32; 2], max: [u32; 2], scale: f32) -> [i32; 4] {
        let scale = if scale.is_finite() && scale > 0.0 {
            scale
        } else {
            1.0
        };
        let x0 = (min[0] as f32 / scale).floor() as i32;
        let y0 = (min[1] as f32 / scale).floor() as i32;
        let x1 = (max[0] as f32 / scale).ceil() as i32;
        let y1 = (max[1] as f32 / scale).ceil() as i32;
        [x0, y0, x1 - x0, y1 - y0]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_drawn_pixels_and_their_neighbours_only() {
        let (w, h) = (10u32, 10u32);
        let mut rgba = vec![0u8; (w * h * 4) as usize];
        rgba[((5 * w + 5) * 4 + 3) as usize] = 255;
        rgba[(9 * 4 + 3) as usize] = 10; // faint edge: not a hit
        let mask = HitMask::from_rgba(w, h, &rgba).expect("mask");
        assert!(mask.hit(5.5, 5.5));
        assert!(mask.hit(7.0, 3.2), "within two pixels");
        assert!(!mask.hit(8.0, 5.0));
        assert!(!mask.hit(9.0, 0.0), "alpha under the threshold");
        assert!(!mask.hit(-50.0, 400.0) && !mask.hit(f32::NAN, 1.0));
        assert!(HitMask::from_rgba(3, 3, &rgba).is_none());
        assert_eq!(mask.drawn_outside(None), 1);
        assert_eq!(
            mask.drawn_outside(Some(([5, 5], [6, 6]))),
            0,
            "under a panel"
        );
        assert_eq!(mask.drawn_outside(Some(([0, 0], [5, 10]))), 1);
    }

    fn drawn_mask(w: u32, h: u32, drawn: &[(u32, u32)]) -> HitMask {
        let mut rgba = vec![0u8; (w * h * 4) as usize];
        for (x, y) in drawn {
            rgba[((y * w + x) * 4 + 3) as usize] = 255;
        }
        HitMask::from_rgba(w, h, &rgba).expect("mask")
    }

    /// Every point of a rectangle (surface pixels, scale 1 here).
    fn covered(rectangles: &[[i32; 4]], x: i32, y: i32) -> bool {
        rectangles
            .iter()
            .any(|[rx, ry, rw, rh]| x >= *rx && y >= *ry && x < rx + rw && y < ry + rh)
    }

    #[test]
    fn the_input_region_covers_what_is_drawn_and_leaves_the_rest_out() {
        // An upright bar (x 20..24, y 10..50) and a dot far from it, in a 64 x 64 window.
        let mut drawn: Vec<(u32, u32)> = (10..50)
            .flat_map(|y| (20..24).map(move |x| (x, y)))
            .collect();
        drawn.push((60, 60));
        let mask = drawn_mask(64, 64, &drawn);
        let rectangles = mask.rectangles(8, 1.0);
        // The bar's squares: columns 16..32 (the radius reaches x 18 and 25), rows 8..56; one
        // rectangle for the bar, one for the dot's square.
        assert_eq!(rectangles, vec![[16, 8, 16, 48], [56, 56, 8, 8]]);
        for (x, y) in drawn {
            assert!(
                covered(&rectangles, x as i32, y as i32),
                "({x}, {y}) left out"
            );
            // What the hit test counts as the avatar is in the region too.
            assert!(mask.hit(x as f32, y as f32));
        }
        // Empty pixels far from anything drawn let the pointer through.
        for (x, y) in [(0, 0), (40, 30), (5, 60), (63, 0)] {
            assert!(
                !covered(&rectangles, x, y),
                "({x}, {y}) catches the pointer"
            );
        }
        // A silhouette's rows of different widths: one rectangle per distinct run.
        let steps: Vec<(u32, u32)> = (0..16)
            .flat_map(|y| (0..if y < 8 { 4 } else { 12 }).map(move |x| (x + 8, y + 8)))
            .collect();
        // Squares of 4: rows 1-2 hold the narrow part, rows 3-6 the wide one (its radius
        // reaches up into row 3).
        assert_eq!(
            drawn_mask(32, 32, &steps).rectangles(4, 1.0),
            vec![[4, 4, 12, 8], [4, 12, 20, 16]]
        );
        // Nothing drawn: no rectangle (an empty region: everything passes through).
        assert!(
            HitMask::from_rgba(8, 8, &[0; 256]).is_some_and(|m| m.rectangles(8, 1.0).is_empty())
        );
    }

    #[test]
    fn the_input_region_is_in_surface_pixels_rounded_outwards() {
        // Scale 1.5: physical pixels 24..40 of a 48-pixel window are surface 16..27 (26.67
        // rounded up). A square cut by the window's edge ends at the edge (45 / 1.5 = 30).
        let drawn: Vec<(u32, u32)> = (26..38)
            .flat_map(|y| (26..38).map(move |x| (x, y)))
            .collect();
        let mask = drawn_mask(48, 48, &drawn);
        assert_eq!(mask.rectangles(8, 1.5), vec![[16, 16, 11, 11]]);
        assert_eq!(
            drawn_mask(45, 45, &[(44, 0)]).rectangles(8, 1.5),
            vec![[26, 0, 4, 6]]
        );
        // A scale that makes no sense counts as 1.
        assert_eq!(mask.rectangles(8, 0.0), mask.rectangles(8, 1.0));
        // Any box of physical pixels (min and max corners) the same way.
        assert_eq!(
            HitMask::surface_rectangle([10, 20], [311, 200], 2.0),
            [5, 10, 151, 90]
        );
    }
}
