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
}
