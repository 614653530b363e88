//! Small-cell suppression: stakeholder documents never show a figure about fewer customers than
//! the pipeline's `min_cell`, nor one that would give such a figure away by subtraction from a
//! total that is shown (complementary suppression).

use serde::Serialize;

/// Why a figure is masked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MaskReason {
    /// It counts fewer customers than `min_cell` (but some).
    SmallCell,
    /// It would give a masked figure away by subtraction from a total that is shown.
    Complementary,
}

/// One masked figure, recorded so a reader of the run knows what the documents leave out.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct MaskedCell {
    /// The table or chart it belongs to: `segments`, `quadrants`, `migration`, ...
    pub table: String,
    /// Its row (a segment id, a quadrant, an old segment).
    pub row: String,
    /// Its column, where the table has several.
    pub column: Option<String>,
    /// Why.
    pub reason: MaskReason,
}

/// Decides which counts are too small to show.
#[derive(Debug, Clone, Copy)]
pub struct Suppressor {
    /// The smallest count shown; 0 and 1 show everything.
    pub min_cell: u64,
}

impl Suppressor {
    /// Whether `count` customers is a group too small to show. Zero is not: an empty group says
    /// nothing about any customer.
    pub fn is_small(&self, count: u64) -> bool {
        count > 0 && count < self.min_cell
    }

    /// Which of `cells` (counts that add up to a total that is shown) to mask: the small ones,
    /// and, when exactly one is masked, the smallest other non-empty one too, so that no masked
    /// count equals the total minus the shown ones.
    pub fn mask_group(&self, cells: &[u64]) -> Vec<Option<MaskReason>> {
        let mut masked: Vec<Option<MaskReason>> = cells
            .iter()
            .map(|&c| self.is_small(c).then_some(MaskReason::SmallCell))
            .collect();
        self.complete(cells, &mut masked);
        masked
    }

    /// Add complementary masks to a group whose small cells are already marked: when exactly
    /// one cell is masked, mask the smallest non-empty unmasked one too, or, when every other
    /// cell is empty, an empty one (a known zero beside a total gives the masked cell away just
    /// the same).
    pub fn complete(&self, cells: &[u64], masked: &mut [Option<MaskReason>]) {
        if masked.iter().filter(|m| m.is_some()).count() != 1 {
            return;
        }
        let unmasked = || {
            cells
                .iter()
                .enumerate()
                .filter(|(i, _)| masked[*i].is_none())
        };
        let partner = unmasked()
            .filter(|(_, c)| **c > 0)
            .min_by_key(|(_, c)| **c)
            .or_else(|| unmasked().next())
            .map(|(i, _)| i);
        if let Some(i) = partner {
            masked[i] = Some(MaskReason::Complementary);
        }
    }

    /// Masks for a table whose row and column totals are shown: small cells, then complementary
    /// cells until no row and no column has exactly one masked cell.
    #[cfg(test)]
    pub fn mask_table(&self, counts: &[Vec<u64>]) -> Vec<Vec<Option<MaskReason>>> {
        let none = counts.iter().map(|row| vec![None; row.len()]).collect();
        self.mask_table_with(counts, none)
    }

    /// As [`Suppressor::mask_table`], starting from cells already masked (`given`): the cells
    /// of a segment whose size is masked elsewhere, say.
    pub fn mask_table_with(
        &self,
        counts: &[Vec<u64>],
        given: Vec<Vec<Option<MaskReason>>>,
    ) -> Vec<Vec<Option<MaskReason>>> {
        let mut masked: Vec<Vec<Option<MaskReason>>> = counts
            .iter()
            .zip(given)
            .map(|(row, given)| {
                row.iter()
                    .enumerate()
                    .map(|(c, &n)| {
                        given
                            .get(c)
                            .copied()
                            .flatten()
                            .or(self.is_small(n).then_some(MaskReason::SmallCell))
                    })
                    .collect()
            })
            .collect();
        let columns = counts.iter().map(Vec::len).max().unwrap_or(0);
        // Each pass masks at least one more cell or stops, so this ends.
        loop {
            let mut changed = false;
            for (row, cells) in counts.iter().enumerate() {
                let before = masked[row].iter().filter(|m| m.is_some()).count();
                self.complete(cells, &mut masked[row]);
                changed |= masked[row].iter().filter(|m| m.is_some()).count() != before;
            }
            for column in 0..columns {
                let cells: Vec<u64> = counts
                    .iter()
                    .map(|r| r.get(column).copied().unwrap_or(0))
                    .collect();
                let mut marks: Vec<Option<MaskReason>> = masked
                    .iter()
                    .map(|r| r.get(column).copied().flatten())
                    .collect();
                let before = marks.iter().filter(|m| m.is_some()).count();
                self.complete(&cells, &mut marks);
                if marks.iter().filter(|m| m.is_some()).count() != before {
                    changed = true;
                    for (row, mark) in marks.into_iter().enumerate() {
                        if let Some(cell) = masked[row].get_mut(column) {
                            *cell = mark;
                        }
                    }
                }
            }
            if !changed {
                return masked;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEN: Suppressor = Suppressor { min_cell: 10 };

    fn count(masks: &[Option<MaskReason>]) -> usize {
        masks.iter().filter(|m| m.is_some()).count()
    }

    #[test]
    fn a_lone_small_cell_takes_the_smallest_other_with_it() {
        let masks = TEN.mask_group(&[100, 3, 40, 12, 0]);
        assert_eq!(masks[1], Some(MaskReason::SmallCell));
        assert_eq!(masks[3], Some(MaskReason::Complementary));
        assert_eq!(count(&masks), 2);
        assert_eq!(
            masks[4], None,
            "empty cells are shown when another can partner"
        );
    }

    #[test]
    fn a_lone_masked_cell_among_zeros_takes_a_zero_with_it() {
        let masks = TEN.mask_group(&[0, 3, 0]);
        assert_eq!(count(&masks), 2, "{masks:?}");
    }

    /// The table of a real comparison whose one small cell (1) a greedy pass left recoverable:
    /// a masked cell alone in its column among zeros.
    #[test]
    fn every_line_of_a_table_keeps_zero_or_at_least_two_masked_cells() {
        let counts = vec![
            vec![26, 0, 256, 0, 0],
            vec![0, 153, 0, 45, 31],
            vec![0, 0, 869, 210, 0],
            vec![0, 0, 1, 852, 33],
            vec![0, 0, 0, 38, 486],
        ];
        let masks = TEN.mask_table(&counts);
        for row in &masks {
            assert_ne!(count(row), 1, "{masks:?}");
        }
        for column in 0..5 {
            let cells: Vec<_> = masks.iter().map(|r| r[column]).collect();
            assert_ne!(count(&cells), 1, "{masks:?}");
        }
    }

    #[test]
    fn two_small_cells_need_no_partner_and_nothing_small_masks_nothing() {
        assert_eq!(count(&TEN.mask_group(&[100, 3, 4])), 2);
        assert_eq!(count(&TEN.mask_group(&[100, 30, 40])), 0);
        assert_eq!(count(&Suppressor { min_cell: 1 }.mask_group(&[1, 2])), 0);
    }

    #[test]
    fn no_row_or_column_of_a_table_keeps_exactly_one_masked_cell() {
        let counts = vec![vec![50, 2, 30], vec![40, 60, 70], vec![20, 25, 0]];
        let masks = TEN.mask_table(&counts);
        for row in &masks {
            assert_ne!(count(row), 1, "{masks:?}");
        }
        for column in 0..3 {
            let cells: Vec<_> = masks.iter().map(|r| r[column]).collect();
            assert_ne!(count(&cells), 1, "{masks:?}");
        }
        assert_eq!(masks[0][1], Some(MaskReason::SmallCell));
    }
}
