//! Level shifts: the search for steps in the history, and the change of level in the newest
//! days that the shift search is too young to see.

use super::design::{Fit, Problem, Rows, Term};
use super::*;
use crate::forecast::prepare::Excursion;

/// The evidence (a χ²₁ statistic) for adding a level shift from day `t` to `fit`, for every
/// `t` at once. The gain of adding a column x to a least-squares fit is (xᵀWr)² / (xᵀWx − gᵀA⁻¹g)
/// with g = XᵀWx: the denominator removes what the other terms (the trend above all) could
/// already absorb of a step. Suffix sums give every step column at once: no refit per
/// candidate.
pub(super) struct ShiftGains<'a> {
    pub(super) fit: &'a Fit,
    pub(super) p: usize,
    /// Suffix sums from the end down to each day: g = XᵀWx, a = xᵀWx, b = xᵀWr.
    pub(super) g: Vec<f64>,
    pub(super) a: Vec<f64>,
    pub(super) b: Vec<f64>,
}

impl<'a> ShiftGains<'a> {
    pub(super) fn new(x: &Rows, fit: &'a Fit, weights: &[f64]) -> ShiftGains<'a> {
        let (n, p) = (x.len(), x.p);
        let mut g = vec![0.0; (n + 1) * p];
        let (mut a, mut b) = (vec![0.0; n + 1], vec![0.0; n + 1]);
        for (t, row) in x.iter().enumerate().rev() {
            let w = weights[t];
            let (now, next) = g.split_at_mut((t + 1) * p);
            for ((gt, gn), v) in now[t * p..].iter_mut().zip(&next[..p]).zip(row) {
                *gt = gn + w * v;
            }
            a[t] = a[t + 1] + w;
            b[t] = b[t + 1] + w * fit.residuals[t];
        }
        ShiftGains { fit, p, g, a, b }
    }

    /// What a step from `t` explains beyond the other terms: xᵀWx − gᵀA⁻¹g, or `None` when
    /// they explain all of it.
    pub(super) fn denominator(&self, t: usize) -> Option<f64> {
        let p = self.p;
        let gt = DVector::from_column_slice(&self.g[t * p..(t + 1) * p]);
        let v = self.fit.normal.l().solve_lower_triangular(&gt)?;
        Some(self.a[t] - v.norm_squared()).filter(|d| *d > 1e-9)
    }

    /// The evidence for a step from `t`, in noise variances.
    pub(super) fn gain(&self, t: usize) -> f64 {
        self.denominator(t).map_or(0.0, |d| {
            self.b[t] * self.b[t] / d / (self.fit.sigma * self.fit.sigma)
        })
    }

    /// The size a step from `t` would be fitted at, in logs.
    pub(super) fn size(&self, t: usize) -> f64 {
        self.denominator(t).map_or(0.0, |d| self.b[t] / d)
    }
}

/// The best level shift to add to `fit`, as (day, evidence), over a weekly grid refined to the
/// day, at least [`SHIFT_MARGIN`] days from either end and a week from the shifts `taken`.
pub(super) fn best_shift(
    x: &Rows,
    fit: &Fit,
    weights: &[f64],
    taken: &[usize],
) -> Option<(usize, f64)> {
    let n = x.len();
    if n < 2 * SHIFT_MARGIN + 7 {
        return None;
    }
    let gains = ShiftGains::new(x, fit, weights);
    let gain = |t: usize| -> f64 {
        if t < SHIFT_MARGIN || t + SHIFT_MARGIN > n || taken.iter().any(|k| k.abs_diff(t) < 7) {
            return 0.0;
        }
        gains.gain(t)
    };
    // Weekly candidates first, then the best one refined to the day: the gain changes slowly.
    let best_week = (n % 7..n)
        .step_by(7)
        .map(|t| (t, gain(t)))
        .max_by(|l, r| l.1.total_cmp(&r.1))?;
    (best_week.0.saturating_sub(6)..=(best_week.0 + 6).min(n - 1))
        .map(|t| (t, gain(t)))
        .max_by(|l, r| l.1.total_cmp(&r.1))
        .filter(|(_, gain)| *gain >= SHIFT_EVIDENCE)
}

/// The clearest level shift among the newest [`RECENT_DAYS`] days (two days of the new level
/// at least), as the day it starts, if it stands [`CHANGE_EVIDENCE`] standard errors clear of
/// what the fitted terms could explain and moves the level by [`MIN_CHANGE`] or more.
///
/// The newest days get their full weight back first: the robust fit discounts them as outliers
/// exactly when they are a new level, which would hide the largest changes best. A change must
/// show on two days or more that are not holidays the fit has a term for: a holiday unlike the
/// last one (a shutdown that did not happen this year) would otherwise pass for a change of
/// level that outlives it.
pub(super) fn recent_shift(
    problem: &Problem,
    terms: &[Term],
    fit: &Fit,
    weights: &[f64],
) -> Option<usize> {
    let n = weights.len();
    let newest = n.saturating_sub(RECENT_DAYS.min(n / 4));
    let holidays: Vec<usize> = (0..terms.len())
        .filter(|j| matches!(terms[*j], Term::Holiday(_)))
        .collect();
    let on_holiday = |row: &[f64]| holidays.iter().any(|j| row[*j] != 0.0);
    let plain: Vec<bool> = problem
        .x
        .iter()
        .skip(newest)
        .map(|row| !on_holiday(row))
        .collect();
    let mut weights = weights.to_vec();
    let refit;
    let fit = match weights[newest..].iter().all(|w| *w == 1.0) {
        true => fit,
        false => {
            weights[newest..].fill(1.0);
            refit = problem.solve(&weights, terms, fit.sigma)?;
            &refit
        }
    };
    let gains = ShiftGains::new(&problem.x, fit, &weights);
    // A level carries most of its days, the newest included; a spike that is passing carries
    // the mean alone, or has already come back. Only days that are not holidays count here.
    let level_like = |t: usize| {
        let days: Vec<f64> = (t..n)
            .filter(|i| plain[*i - newest])
            .map(|i| fit.residuals[i])
            .collect();
        if days.len() < 2 {
            return false;
        }
        let mean = gains.b[t] / gains.a[t];
        let share = |from: usize| median(&mut days[from..].to_vec()) / mean;
        share(0) >= 0.5 && share(days.len().saturating_sub(3)) >= 0.25
    };
    let (at, gain) = (newest..n.saturating_sub(1))
        .map(|t| (t, gains.gain(t)))
        .filter(|(t, gain)| {
            *gain >= CHANGE_EVIDENCE * CHANGE_EVIDENCE
                && gains.size(*t).abs() >= MIN_CHANGE
                && level_like(*t)
        })
        .max_by(|l, r| l.1.total_cmp(&r.1))?;
    // A ramp that flattens (or a decline that steepens) also leaves its newest days off the
    // fit, but a bend in the trend that began weeks before explains them as well as a step or
    // better. (A bend just before a step mimics the step, so those are not tried.) A bend
    // drifts off the line by a little a day; a jump of a third or more in days is a jump,
    // whatever the weeks before it did.
    if gains.size(at).abs() >= JUMP {
        return Some(at);
    }
    let bend = (at.saturating_sub(RECENT_DAYS + 7)..at.saturating_sub(7))
        .step_by(3)
        .map(|k| bend_gain(problem, fit, &weights, k))
        .fold(0.0, f64::max);
    (bend < gain).then_some(at)
}

/// The newest days a nascent change is looked for in.
const NASCENT_DAYS: usize = 3;
/// A nascent change stands this many standard errors from zero: below [`CHANGE_EVIDENCE`],
/// since it only widens the interval. On generated bills with steps 1 to 21 days old it raised
/// the 80% coverage of totals from 73-77% to 75-78% and of days from 72-73% to 74-76%, for up
/// to 1% more coverage of totals on bills with no recent step.
const NASCENT_EVIDENCE: f64 = 2.0;

/// Where [`recent_shift`] found nothing, a change that may be starting: the mean residual of
/// the newest one to [`NASCENT_DAYS`] days, whichever stands furthest from zero, if it stands
/// [`NASCENT_EVIDENCE`] standard errors out and moves the level by [`MIN_CHANGE`]. A step one
/// day old, or a small one three days old on a noisy bill, cannot be told from noise, but the
/// interval can admit that it may hold.
pub(super) fn nascent_change(
    fit: &Fit,
    excursions: &[Excursion],
    shifts: usize,
) -> Option<RecentChange> {
    let n = fit.residuals.len();
    (1..=NASCENT_DAYS.min(n))
        .map(|k| {
            let size = fit.residuals[n - k..].iter().sum::<f64>() / k as f64;
            (k, size, k as f64 * size * size / (fit.sigma * fit.sigma))
        })
        .filter(|(_, size, evidence)| {
            size.abs() >= MIN_CHANGE && *evidence >= NASCENT_EVIDENCE * NASCENT_EVIDENCE
        })
        .max_by(|l, r| l.2.total_cmp(&r.2))
        .map(|(k, size, _)| RecentChange::new(k, size, excursions, shifts))
}

/// A recent change this large (in logs, about 35%) is a jump even where a bend in the trend
/// explains the newest days as well.
const JUMP: f64 = 0.3;

/// The evidence (a χ²₁ statistic) for adding to `fit` a change of slope from day `k`, as
/// [`ShiftGains`] measures a step.
pub(super) fn bend_gain(problem: &Problem, fit: &Fit, weights: &[f64], k: usize) -> f64 {
    let p = problem.x.p;
    let mut g = DVector::<f64>::zeros(p);
    let (mut a, mut b) = (0.0, 0.0);
    for (t, row) in problem.x.iter().enumerate().skip(k + 1) {
        let (x, w) = ((t - k) as f64, weights[t]);
        for (gj, v) in g.iter_mut().zip(row) {
            *gj += w * x * v;
        }
        a += w * x * x;
        b += w * x * fit.residuals[t];
    }
    let Some(v) = fit.normal.l().solve_lower_triangular(&g) else {
        return 0.0;
    };
    let denominator = a - v.norm_squared();
    match denominator > 1e-9 * a.max(1.0) {
        true => b * b / denominator / (fit.sigma * fit.sigma),
        false => 0.0,
    }
}

/// Past this multiple of the level, a rise is more often a runaway than a new level (see
/// [`RecentChange::new`]).
const RUNAWAY_RATIO: f64 = 2.0;
/// The power of how far beyond [`RUNAWAY_RATIO`] a rise went that multiplies its odds of
/// passing. On the development sets (generated bills and stress bills of other seeds than the
/// benchmark's) the cube instead of the square cut the mean MASE of bills by 0.4-1.0% and of
/// stress bills by 0.3-1.2%, with the median error of 30-day totals unchanged.
const RUNAWAY_POWER: i32 = 3;
/// A change three days old or more whose newest day went back by more than this share of it
/// (and by two noise deviations) is coming back: an excursion, not a level.
const COMEBACK_SHARE: f64 = 0.3;
/// ... and its odds of passing are multiplied by this. A spike of four days whose fourth fell
/// halfway back was forecast to hold at 50%; on the development sets 4 cut the mean MASE of
/// bills by 0.2-1.3%, 2 by half as much, and changed the stress bills' by under 0.2%.
const COMEBACK_ODDS: f64 = 4.0;

/// A change of level in the newest days that the fit has not absorbed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RecentChange {
    /// Days since the change (the change's first day is `n - days`).
    pub days: usize,
    /// The change, in logs: the fitted shift's coefficient.
    pub log_size: f64,
    /// The odds that it is an excursion that will pass rather than a new level.
    pub passing_odds: f64,
}

impl RecentChange {
    /// A change of `log_size` from `days` days before the end of a series with the past
    /// `excursions` and `shifts` level shifts.
    ///
    /// Passing excursions and new levels compete as explanations of the newest days: the odds
    /// are the rate of excursions that lasted at least as long, the same way and about as far
    /// ([`Excursion::resembles`]), over the rate of level changes, each counted in the series'
    /// own history on top of a prior of one change against [`CHANGE_HALF_DAYS`]` / days`
    /// excursions (with no history: even odds after half a day, about 93% holding after a
    /// week). A bill whose runaway jobs have lasted four days before is not believed to have a
    /// new level after three. A rise beyond [`RUNAWAY_RATIO`] times the level multiplies the
    /// odds by the cube of how far beyond: a fourfold rise two days old is more likely to
    /// pass than to hold. Falls are not discounted: a workload scaled to zero stays there.
    pub fn new(days: usize, log_size: f64, excursions: &[Excursion], shifts: usize) -> Self {
        let as_long = excursions
            .iter()
            .filter(|e| e.resembles(days, log_size))
            .count();
        // Beyond a doubling, a rise is more often a runaway job or a burst than a new level.
        let runaway = (log_size.exp() / RUNAWAY_RATIO)
            .max(1.0)
            .powi(RUNAWAY_POWER);
        let passing_odds =
            runaway * (as_long as f64 + CHANGE_HALF_DAYS / days as f64) / (shifts as f64 + 1.0);
        RecentChange {
            days,
            log_size,
            passing_odds,
        }
    }

    /// The change, knowing that the newest day's residual from the fit with it is `residual`
    /// (in logs) on noise of `sigma`: a newest day that went back ([`COMEBACK_SHARE`]) makes
    /// passing [`COMEBACK_ODDS`] times likelier.
    pub fn with_newest_day(mut self, residual: f64, sigma: f64) -> Self {
        let back = -residual * self.log_size.signum();
        if self.days >= 3 && back > (COMEBACK_SHARE * self.log_size.abs()).max(2.0 * sigma) {
            self.passing_odds *= COMEBACK_ODDS;
        }
        self
    }

    /// The probability that the new level holds.
    pub fn persistence(&self) -> f64 {
        1.0 / (1.0 + self.passing_odds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rise_far_beyond_a_doubling_is_more_likely_to_pass() {
        let holds =
            |days: usize, ratio: f64| RecentChange::new(days, ratio.ln(), &[], 0).persistence();
        // Two days of +50%: 1 / (1 + 0.25) = 80% holding, as for any change up to a doubling.
        assert!((holds(2, 1.5) - 0.8).abs() < 1e-9);
        assert!((holds(2, 2.0) - 0.8).abs() < 1e-9);
        // Fivefold: odds 0.25 × 2.5³ ≈ 3.91, 20% holding; a week on, 0.071 × 15.6: 47%.
        assert!((holds(2, 5.0) - 0.204).abs() < 0.001, "{}", holds(2, 5.0));
        assert!((holds(7, 5.0) - 0.473).abs() < 0.001, "{}", holds(7, 5.0));
        // A fall to a fifth is not a runaway: 80% holding after two days.
        assert!((holds(2, 0.2) - 0.8).abs() < 1e-9);
    }

    #[test]
    fn a_change_whose_newest_day_went_back_is_likelier_to_pass() {
        // Four days of a fourfold rise (odds 0.125 × 2³ = 1, 50% holding).
        let change = RecentChange::new(4, 4f64.ln(), &[], 0);
        assert!((change.persistence() - 0.5).abs() < 1e-9);
        // The fourth day fell halfway back: 1 / (1 + 4) = 20% holding.
        let back = change.with_newest_day(-0.5 * 4f64.ln(), 0.1);
        assert!((back.persistence() - 0.2).abs() < 1e-9);
        // A newest day within the noise, or a change two days old, says nothing yet.
        assert_eq!(change.with_newest_day(-0.15, 0.1), change);
        let young = RecentChange::new(2, 4f64.ln(), &[], 0);
        assert_eq!(young.with_newest_day(-0.7, 0.1), young);
        // A fall whose newest day rose back counts the same way.
        let fall = RecentChange::new(5, 0.5f64.ln(), &[], 0);
        assert!(fall.with_newest_day(0.4, 0.05).persistence() < fall.persistence());
    }
}
