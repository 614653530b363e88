//! How strongly two groups differ in a category feature: Pearson's chi-square test of the
//! contingency table (groups × values) and Cramér's V, its effect size.

use serde::{Deserialize, Serialize};
use statrs::distribution::{ChiSquared, ContinuousCDF};

/// Chi-square test and Cramér's V of one contingency table.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Association {
    /// Cramér's V = sqrt(χ² / (n · (min(rows, columns) − 1))): 0 when the groups hold the values
    /// in the same proportions, 1 when no value is shared. For two groups 0.1 is small, 0.3
    /// medium, 0.5 large (Cohen).
    pub cramers_v: f64,
    /// Pearson's χ² = Σ (observed − expected)² / expected, expected = row total × column total / n.
    pub chi_square: f64,
    /// Degrees of freedom: (rows − 1) × (columns − 1).
    pub degrees_of_freedom: u64,
    /// The test's p-value: the chance of a χ² this large if the groups held the values in the
    /// same proportions.
    pub p_value: f64,
    /// Customers in the table.
    pub customers: u64,
    /// Whether some expected count is below 5, where the χ² approximation is rough.
    pub small_expected: bool,
}

/// The association of a table of `rows` (one per group, counts per value in the same order).
/// Values nobody holds and empty groups are dropped; `None` when fewer than two groups or two
/// values remain (nothing to compare).
pub fn associate(rows: &[Vec<u64>]) -> Option<Association> {
    let width = rows.iter().map(Vec::len).max()?;
    let column_total =
        |j: usize| -> u64 { rows.iter().map(|r| r.get(j).copied().unwrap_or(0)).sum() };
    let columns: Vec<usize> = (0..width).filter(|&j| column_total(j) > 0).collect();
    let rows: Vec<Vec<f64>> = rows
        .iter()
        .map(|r| {
            columns
                .iter()
                .map(|&j| r.get(j).copied().unwrap_or(0) as f64)
                .collect::<Vec<f64>>()
        })
        .filter(|r| r.iter().sum::<f64>() > 0.0)
        .collect();
    if rows.len() < 2 || columns.len() < 2 {
        return None;
    }
    let n: f64 = rows.iter().flatten().sum();
    let row_totals: Vec<f64> = rows.iter().map(|r| r.iter().sum()).collect();
    let column_totals: Vec<f64> = (0..columns.len())
        .map(|j| rows.iter().map(|r| r[j]).sum())
        .collect();
    let mut chi_square = 0.0;
    let mut small_expected = false;
    for (r, row) in rows.iter().enumerate() {
        for (j, observed) in row.iter().enumerate() {
            let expected = row_totals[r] * column_totals[j] / n;
            small_expected |= expected < 5.0;
            chi_square += (observed - expected).powi(2) / expected;
        }
    }
    let smaller = rows.len().min(columns.len()) as f64;
    let degrees_of_freedom = ((rows.len() - 1) * (columns.len() - 1)) as u64;
    let p_value = ChiSquared::new(degrees_of_freedom as f64)
        .map(|d| d.sf(chi_square))
        .unwrap_or(f64::NAN);
    Some(Association {
        cramers_v: (chi_square / (n * (smaller - 1.0))).sqrt().min(1.0),
        chi_square,
        degrees_of_freedom,
        p_value,
        customers: n as u64,
        small_expected,
    })
}

/// The counts of everyone in `all` who is not in `part`, cell by cell.
pub fn rest(all: &[u64], part: &[u64]) -> Vec<u64> {
    all.iter()
        .zip(part)
        .map(|(a, p)| a.saturating_sub(*p))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Worked by hand: rows (30, 10) and (10, 30); expected 20 everywhere, so
    /// χ² = 4 × 10² / 20 = 20, V = sqrt(20 / 80) = 0.5, df = 1, and with one degree of freedom
    /// p = P(χ²₁ > 20) = erfc(sqrt(10)) = 7.744216431e-6.
    #[test]
    fn two_by_two_by_hand() {
        let a = associate(&[vec![30, 10], vec![10, 30]]).expect("defined");
        assert!((a.chi_square - 20.0).abs() < 1e-12);
        assert!((a.cramers_v - 0.5).abs() < 1e-12);
        assert_eq!(a.degrees_of_freedom, 1);
        assert!(
            (a.p_value - 7.744_216_431e-6).abs() < 1e-13,
            "{}",
            a.p_value
        );
        assert!(!a.small_expected);
    }

    /// A 2 × 3 table by hand: expected (30, 30, 40) in both rows, so
    /// χ² = 2 × (10²/30 + 0 + 10²/40) = 35/3; with two degrees of freedom the survival function
    /// is exactly exp(−χ²/2).
    #[test]
    fn two_by_three_by_hand() {
        let a = associate(&[vec![20, 30, 50], vec![40, 30, 30]]).expect("defined");
        assert!(
            (a.chi_square - 35.0 / 3.0).abs() < 1e-12,
            "{}",
            a.chi_square
        );
        assert_eq!(a.degrees_of_freedom, 2);
        assert!(
            (a.p_value - (-35.0f64 / 6.0).exp()).abs() < 1e-12,
            "{}",
            a.p_value
        );
        assert!((a.cramers_v - (35.0f64 / 3.0 / 200.0).sqrt()).abs() < 1e-12);
    }

    #[test]
    fn same_proportions_are_zero_and_no_variation_is_undefined() {
        let a = associate(&[vec![10, 20], vec![20, 40]]).expect("defined");
        assert!(a.cramers_v.abs() < 1e-12);
        assert!((a.p_value - 1.0).abs() < 1e-12);
        // Everyone holds the one value: dropped empty columns leave nothing to compare.
        assert_eq!(associate(&[vec![10, 0], vec![5, 0]]), None);
        assert_eq!(associate(&[vec![10, 3], vec![0, 0]]), None);
    }

    #[test]
    fn no_shared_value_is_one() {
        let a = associate(&[vec![10, 0], vec![0, 7]]).expect("defined");
        assert!((a.cramers_v - 1.0).abs() < 1e-12);
    }
}
