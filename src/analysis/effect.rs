//! Standardized effect sizes: how far apart two groups are on a feature, in units of their
//! pooled standard deviation (Cohen's d).

use crate::engine::FeatureStats;

/// Count, mean and sample standard deviation of a feature in a group.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Moments {
    /// Values (non-null).
    pub n: f64,
    /// Mean.
    pub mean: f64,
    /// Sample standard deviation (0 for fewer than two values).
    pub sd: f64,
}

impl Moments {
    /// The moments of a statistics row, if the feature is numeric and has values.
    pub fn of(stats: &FeatureStats) -> Option<Self> {
        let mean = stats.mean?;
        (stats.non_null > 0).then(|| Moments {
            n: stats.non_null as f64,
            mean,
            sd: stats.std_dev.unwrap_or(0.0),
        })
    }

    /// The moments of everyone in `all` who is not in `part` (a subset of `all`).
    pub fn rest(all: Moments, part: Moments) -> Option<Moments> {
        let n = all.n - part.n;
        if n < 1.0 {
            return None;
        }
        let mean = (all.n * all.mean - part.n * part.mean) / n;
        let total_ss = (all.n - 1.0) * all.sd.powi(2);
        let part_ss = (part.n - 1.0).max(0.0) * part.sd.powi(2);
        let rest_ss = total_ss
            - part_ss
            - part.n * (part.mean - all.mean).powi(2)
            - n * (mean - all.mean).powi(2);
        let sd = if n > 1.0 {
            (rest_ss.max(0.0) / (n - 1.0)).sqrt()
        } else {
            0.0
        };
        Some(Moments { n, mean, sd })
    }
}

/// Cohen's d of `a` against `b` with the pooled standard deviation
/// `sqrt(((n_a - 1) s_a² + (n_b - 1) s_b²) / (n_a + n_b - 2))`. `None` when it is undefined:
/// fewer than three values in all, or no variation in either group.
pub fn cohens_d(a: Moments, b: Moments) -> Option<f64> {
    let dof = a.n + b.n - 2.0;
    if dof <= 0.0 {
        return None;
    }
    let pooled = (((a.n - 1.0) * a.sd.powi(2) + (b.n - 1.0) * b.sd.powi(2)) / dof).sqrt();
    // A standard deviation that is rounding noise (a constant feature's variance computed in
    // floating point) is no variation: dividing by it would give d in the millions.
    let noise = 1e-9 * a.mean.abs().max(b.mean.abs()).max(1.0);
    (pooled > noise).then(|| (a.mean - b.mean) / pooled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_noise_is_no_variation() {
        // A constant feature's standard deviation computed in floating point.
        let a = Moments {
            n: 20.0,
            mean: 1.0,
            sd: 1e-17,
        };
        let b = Moments {
            n: 30.0,
            mean: 0.0,
            sd: 0.0,
        };
        assert_eq!(cohens_d(a, b), None);
        let c = Moments { sd: 1.0, ..b };
        let pooled = (29.0f64 / 48.0).sqrt();
        assert!((cohens_d(a, c).unwrap_or_default() - 1.0 / pooled).abs() < 1e-12);
    }

    fn moments(values: &[f64]) -> Moments {
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
        Moments {
            n,
            mean,
            sd: var.sqrt(),
        }
    }

    #[test]
    fn cohens_d_matches_a_hand_computation() {
        // a: 1, 2, 3 (mean 2, s² 1); b: 4, 5, 6 (mean 5, s² 1); pooled s = 1; d = -3.
        let d = cohens_d(moments(&[1.0, 2.0, 3.0]), moments(&[4.0, 5.0, 6.0])).unwrap();
        assert!((d + 3.0).abs() < 1e-12, "{d}");
        // Unequal sizes: a: 2, 4 (mean 3, s² 2); b: 1, 2, 3, 6 (mean 3, s² 14/3).
        // pooled s² = (1·2 + 3·14/3) / 4 = 4; d = 0.
        let d = cohens_d(moments(&[2.0, 4.0]), moments(&[1.0, 2.0, 3.0, 6.0])).unwrap();
        assert!(d.abs() < 1e-12);
        assert_eq!(cohens_d(moments(&[1.0, 1.0]), moments(&[1.0, 1.0])), None);
    }

    #[test]
    fn rest_equals_the_moments_of_the_other_values() {
        let all = [1.0, 5.0, 2.0, 8.0, 3.0, 9.0, 4.0];
        let part = [5.0, 8.0, 9.0];
        let rest = Moments::rest(moments(&all), moments(&part)).unwrap();
        let want = moments(&[1.0, 2.0, 3.0, 4.0]);
        assert!((rest.n - want.n).abs() < 1e-12);
        assert!((rest.mean - want.mean).abs() < 1e-12);
        assert!(
            (rest.sd - want.sd).abs() < 1e-9,
            "{} vs {}",
            rest.sd,
            want.sd
        );
    }
}
