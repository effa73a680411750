//! Aggregation over seeds (issue 12): the runs of one method differ only by their seed, and every number
//! the report shows for a method is the mean ± the sample standard deviation over its runs, with their
//! count. Two methods' mean losses are "≈" when they differ by at most two standard errors of the
//! difference.

/// Mean, sample standard deviation (n − 1 in the denominator) and count of a method's values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stat {
    pub mean: f64,
    /// 0 when `n` = 1 (undefined; never shown then).
    pub sd: f64,
    pub n: usize,
}

impl Stat {
    /// The statistics of `values`; `None` when there are none.
    pub fn of(values: &[f64]) -> Option<Stat> {
        let n = values.len();
        if n == 0 {
            return None;
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        let sd = if n > 1 {
            let ss: f64 = values.iter().map(|x| (x - mean).powi(2)).sum();
            (ss / (n - 1) as f64).sqrt()
        } else {
            0.0
        };
        Some(Stat { mean, sd, n })
    }

    /// The statistics of the values that are present (a run without the value does not count in `n`).
    pub fn of_some(values: impl IntoIterator<Item = Option<f64>>) -> Option<Stat> {
        let v: Vec<f64> = values.into_iter().flatten().collect();
        Stat::of(&v)
    }

    /// One value as `fmt` writes it; several as `mean ± sd (n)`, both written by `fmt` (a leading `+` that
    /// `fmt` puts on the sd is dropped).
    pub fn format(&self, fmt: impl Fn(f64) -> String) -> String {
        if self.n == 1 {
            return fmt(self.mean);
        }
        let sd = fmt(self.sd);
        format!(
            "{} ± {} ({})",
            fmt(self.mean),
            sd.trim_start_matches('+'),
            self.n
        )
    }
}

/// How a method's mean loss compares with a baseline's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// |Δ| ≤ 2 σ_diff: not distinguishable at these seeds.
    Within2Sigma,
    /// Lower loss by more than 2 σ_diff.
    Better,
    /// Higher loss by more than 2 σ_diff.
    Worse,
    /// One side has a single run: no σ, no verdict.
    NoSigma,
}

impl Verdict {
    pub fn text(self) -> &'static str {
        match self {
            Verdict::Within2Sigma => "≈",
            Verdict::Better => "better",
            Verdict::Worse => "worse",
            Verdict::NoSigma => "n = 1, no σ",
        }
    }
}

/// `a − b` of two mean losses.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Difference {
    pub delta: f64,
    /// σ_diff = √(sd_a²/n_a + sd_b²/n_b), the standard error of a difference of means; `None` when
    /// either side has one run.
    pub sigma: Option<f64>,
    pub verdict: Verdict,
}

/// Compares mean losses (lower is better): Δ = a − b, "≈" when |Δ| ≤ 2 σ_diff.
pub fn compare(a: &Stat, b: &Stat) -> Difference {
    let delta = a.mean - b.mean;
    if a.n < 2 || b.n < 2 {
        return Difference {
            delta,
            sigma: None,
            verdict: Verdict::NoSigma,
        };
    }
    let sigma = (a.sd.powi(2) / a.n as f64 + b.sd.powi(2) / b.n as f64).sqrt();
    let verdict = if delta.abs() <= 2.0 * sigma {
        Verdict::Within2Sigma
    } else if delta < 0.0 {
        Verdict::Better
    } else {
        Verdict::Worse
    };
    Difference {
        delta,
        sigma: Some(sigma),
        verdict,
    }
}

/// Spearman's rank correlation of the pairs: the Pearson correlation of their ranks (ties get the mean of
/// the ranks they span). `None` for fewer than 3 pairs or when one side is constant.
pub fn spearman(pairs: &[(f64, f64)]) -> Option<f64> {
    if pairs.len() < 3 {
        return None;
    }
    let rx = ranks(&pairs.iter().map(|p| p.0).collect::<Vec<_>>());
    let ry = ranks(&pairs.iter().map(|p| p.1).collect::<Vec<_>>());
    let n = rx.len() as f64;
    let (mx, my) = (rx.iter().sum::<f64>() / n, ry.iter().sum::<f64>() / n);
    let cov: f64 = rx.iter().zip(&ry).map(|(a, b)| (a - mx) * (b - my)).sum();
    let vx: f64 = rx.iter().map(|a| (a - mx).powi(2)).sum();
    let vy: f64 = ry.iter().map(|b| (b - my).powi(2)).sum();
    (vx > 0.0 && vy > 0.0).then(|| cov / (vx * vy).sqrt())
}

/// 1-based ranks of `values`, ties sharing their mean rank.
fn ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut out = vec![0.0; values.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && values[order[j + 1]] == values[order[i]] {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            out[k] = rank;
        }
        i = j + 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn mean_sample_sd_and_n() {
        // 2, 4, 6: mean 4, squares 4 + 0 + 4 = 8 over n − 1 = 2 → sd = 2.
        let s = Stat::of(&[2.0, 4.0, 6.0]).unwrap();
        assert!(close(s.mean, 4.0) && close(s.sd, 2.0) && s.n == 3, "{s:?}");
        assert_eq!(
            Stat::of(&[3.5]),
            Some(Stat {
                mean: 3.5,
                sd: 0.0,
                n: 1
            })
        );
        assert_eq!(Stat::of(&[]), None);
        // Absent values do not count.
        let s = Stat::of_some([Some(1.0), None, Some(3.0)]).unwrap();
        assert!(
            close(s.mean, 2.0) && close(s.sd, 2f64.sqrt()) && s.n == 2,
            "{s:?}"
        );
    }

    #[test]
    fn one_run_shows_the_plain_value_several_show_mean_sd_and_n() {
        let loss = |x: f64| format!("{x:.4}");
        let signed = |x: f64| format!("{x:+.4}");
        assert_eq!(Stat::of(&[3.74536]).unwrap().format(loss), "3.7454");
        let s = Stat::of(&[2.0, 4.0, 6.0]).unwrap();
        assert_eq!(s.format(loss), "4.0000 ± 2.0000 (3)");
        assert_eq!(s.format(signed), "+4.0000 ± 2.0000 (3)");
    }

    #[test]
    fn within_two_sigma_is_approximately_equal() {
        // sd 0.1 and 0.2 over 4 runs each: σ_diff = √(0.01/4 + 0.04/4) = √0.0125 ≈ 0.1118, 2σ ≈ 0.2236.
        let b = Stat {
            mean: 3.0,
            sd: 0.2,
            n: 4,
        };
        let a = |mean| Stat {
            mean,
            sd: 0.1,
            n: 4,
        };
        let d = compare(&a(3.2), &b);
        assert!(close(d.delta, 0.2) && close(d.sigma.unwrap(), 0.0125f64.sqrt()));
        assert_eq!(d.verdict, Verdict::Within2Sigma);
        assert_eq!(compare(&a(2.7), &b).verdict, Verdict::Better);
        assert_eq!(compare(&a(3.3), &b).verdict, Verdict::Worse);
        // One run on either side: no σ.
        let single = Stat {
            mean: 3.0,
            sd: 0.0,
            n: 1,
        };
        let d = compare(&single, &b);
        assert_eq!((d.sigma, d.verdict), (None, Verdict::NoSigma));
        assert_eq!(d.verdict.text(), "n = 1, no σ");
    }

    #[test]
    fn spearman_by_hand() {
        let up = [(1.0, 10.0), (2.0, 20.0), (3.0, 25.0), (4.0, 100.0)];
        assert_eq!(spearman(&up), Some(1.0));
        let down: Vec<(f64, f64)> = up.iter().map(|&(x, y)| (x, -y)).collect();
        assert_eq!(spearman(&down), Some(-1.0));
        // Ranks x 1 2 3 4, y 2 1 4 3: Σd² = 4, ρ = 1 − 6·4 / (4·15) = 0.6.
        let swapped = [(1.0, 2.0), (2.0, 1.0), (3.0, 4.0), (4.0, 3.0)];
        assert!((spearman(&swapped).unwrap() - 0.6).abs() < 1e-12);
        // Ties share their mean rank: y 1, 1, 2 ranks 1.5, 1.5, 3.
        assert_eq!(ranks(&[5.0, 5.0, 7.0]), [1.5, 1.5, 3.0]);
        assert_eq!(spearman(&up[..2]), None);
        assert_eq!(spearman(&[(1.0, 1.0), (2.0, 1.0), (3.0, 1.0)]), None);
    }
}
