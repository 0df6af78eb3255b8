//! Agreement between raters who labelled the same items: Cohen's kappa (unweighted), over
//! the items both labelled.
//!
//! `kappa = (p_o - p_e) / (1 - p_e)` where `p_o` is the share of items given the same label
//! and `p_e` the agreement expected by chance, `sum over labels of p_a(label) * p_b(label)`
//! from each rater's own label frequencies. When `p_e` is 1 (both raters gave every item the
//! one same label) kappa is 0/0: it is reported as undefined, with the observed agreement.

use std::collections::BTreeMap;

use serde::Serialize;

/// Agreement of two raters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Kappa {
    /// Items both raters labelled.
    pub n: usize,
    /// Share of those items with the same label (`p_o`).
    pub observed: f64,
    /// Agreement expected by chance from each rater's label frequencies (`p_e`).
    pub expected: f64,
    /// Cohen's kappa; `None` when `p_e` is 1 and kappa is undefined.
    pub kappa: Option<f64>,
}

/// Cohen's kappa of paired labels `(rater a's, rater b's)`, one pair per item; `None` when
/// there are no pairs.
pub fn cohen_kappa<L: Ord>(pairs: &[(L, L)]) -> Option<Kappa> {
    let n = pairs.len();
    if n == 0 {
        return None;
    }
    let mut a: BTreeMap<&L, usize> = BTreeMap::new();
    let mut b: BTreeMap<&L, usize> = BTreeMap::new();
    let mut same = 0;
    for (x, y) in pairs {
        *a.entry(x).or_default() += 1;
        *b.entry(y).or_default() += 1;
        same += usize::from(x == y);
    }
    // Kept in integers so the degenerate case (every item in one shared label) is exact.
    let chance: usize = a
        .iter()
        .map(|(label, count)| count * b.get(label).copied().unwrap_or(0))
        .sum();
    let observed = same as f64 / n as f64;
    let expected = chance as f64 / (n * n) as f64;
    let kappa = (chance != n * n).then(|| (observed - expected) / (1.0 - expected));
    Some(Kappa {
        n,
        observed,
        expected,
        kappa,
    })
}

/// Agreement of one pair of raters over the items both labelled.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairAgreement {
    pub a: String,
    pub b: String,
    /// Items both labelled.
    pub n: usize,
    /// `None` when they labelled no item in common.
    pub agreement: Option<Kappa>,
}

/// Agreement of `a` and `b`, each a map from item to label, over the items both labelled.
pub fn agreement_between<K: Ord, L: Ord + Clone>(
    a_name: &str,
    a: &BTreeMap<K, L>,
    b_name: &str,
    b: &BTreeMap<K, L>,
) -> PairAgreement {
    let pairs: Vec<(L, L)> = a
        .iter()
        .filter_map(|(item, x)| b.get(item).map(|y| (x.clone(), y.clone())))
        .collect();
    PairAgreement {
        a: a_name.to_string(),
        b: b_name.to_string(),
        n: pairs.len(),
        agreement: cohen_kappa(&pairs),
    }
}

/// Agreement of every pair of raters (in name order), each over the items both labelled.
pub fn pairwise<K: Ord, L: Ord + Clone>(
    raters: &BTreeMap<String, BTreeMap<K, L>>,
) -> Vec<PairAgreement> {
    let names: Vec<&String> = raters.keys().collect();
    let mut out = Vec::new();
    for (i, a) in names.iter().enumerate() {
        for b in &names[i + 1..] {
            out.push(agreement_between(a, &raters[*a], b, &raters[*b]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pairs from a 2x2 table: `[[yes/yes, yes/no], [no/yes, no/no]]` (rows rater a).
    fn table(cells: [[usize; 2]; 2]) -> Vec<(&'static str, &'static str)> {
        let labels = ["yes", "no"];
        let mut out = Vec::new();
        for (i, row) in cells.iter().enumerate() {
            for (j, count) in row.iter().enumerate() {
                out.extend(std::iter::repeat_n((labels[i], labels[j]), *count));
            }
        }
        out
    }

    #[test]
    fn textbook_two_rater_tables() {
        // 50 proposals, two readers (Wikipedia's "Cohen's kappa" worked example):
        // both yes 20, a yes b no 5, a no b yes 10, both no 15.
        // p_o = 35/50 = 0.7; a says yes 25/50, b 30/50; p_e = 0.5*0.6 + 0.5*0.4 = 0.5;
        // kappa = (0.7 - 0.5) / (1 - 0.5) = 0.4.
        let k = cohen_kappa(&table([[20, 5], [10, 15]])).unwrap();
        assert_eq!(k.n, 50);
        assert!((k.observed - 0.7).abs() < 1e-12);
        assert!((k.expected - 0.5).abs() < 1e-12);
        assert!((k.kappa.unwrap() - 0.4).abs() < 1e-12);
        // Same agreement, unbalanced marginals: 45/15/25/15 gives p_o 0.6, p_e 0.54,
        // kappa 0.06/0.46 = 0.1304...
        let k = cohen_kappa(&table([[45, 15], [25, 15]])).unwrap();
        assert!((k.kappa.unwrap() - 0.06 / 0.46).abs() < 1e-12);
    }

    #[test]
    fn three_labels_perfect_none_and_systematic_disagreement() {
        let same = [("s", "s"), ("p", "p"), ("d", "d")];
        assert_eq!(cohen_kappa(&same).unwrap().kappa, Some(1.0));
        // Always disagreeing on two balanced labels: p_o 0, p_e 0.5, kappa -1.
        let opposite = [("s", "d"), ("d", "s")];
        assert_eq!(cohen_kappa(&opposite).unwrap().kappa, Some(-1.0));
        let none: [(&str, &str); 0] = [];
        assert!(cohen_kappa(&none).is_none());
    }

    #[test]
    fn one_shared_label_is_undefined_not_nan() {
        let k = cohen_kappa(&[("s", "s"), ("s", "s"), ("s", "s")]).unwrap();
        assert_eq!(k.n, 3);
        assert_eq!(k.observed, 1.0);
        assert_eq!(k.expected, 1.0);
        assert_eq!(k.kappa, None);
        // One rater constant, the other not: p_e < 1, kappa defined (0 here).
        let k = cohen_kappa(&[("s", "s"), ("s", "d")]).unwrap();
        assert_eq!(k.kappa, Some(0.0));
    }

    #[test]
    fn pairs_use_only_items_both_labelled() {
        let mut raters: BTreeMap<String, BTreeMap<u32, &str>> = BTreeMap::new();
        raters.insert("ann".into(), [(1, "s"), (2, "d"), (3, "s")].into());
        raters.insert("bob".into(), [(1, "s"), (2, "s"), (4, "d")].into());
        raters.insert("cy".into(), [(9, "s")].into());
        let pairs = pairwise(&raters);
        assert_eq!(pairs.len(), 3);
        assert_eq!((pairs[0].a.as_str(), pairs[0].b.as_str()), ("ann", "bob"));
        assert_eq!(pairs[0].n, 2);
        // ann s,d vs bob s,s: p_o 0.5, p_e 0.5, kappa 0.
        assert_eq!(pairs[0].agreement.unwrap().kappa, Some(0.0));
        assert_eq!(pairs[1].n, 0);
        assert!(pairs[1].agreement.is_none());
    }
}
