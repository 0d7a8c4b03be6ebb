//! The regression itself: the design's terms, the weighted normal equations, and the robust
//! fit that down-weights outlying days.

use nalgebra::{Cholesky, DMatrix, DVector, Dyn};

use super::*;
use crate::domain::{Day, Holiday, Holidays};
use crate::forecast::periodic::DayKeys;

/// One column of the design: how a feature is computed for day `t` (0 = first day).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Term {
    Intercept,
    /// Time over the history span.
    Trend,
    /// A slope change at `t`.
    Knot(usize),
    /// A level shift from day `t` on.
    Shift(usize),
    /// Monday = 0; Sunday is the baseline.
    Weekday(u32),
    /// A day of the month with a steady effect (a fee on the 1st, the 15th, the last day, a
    /// run on the second Tuesday).
    MonthDay(MonthlyDay),
    /// Days of a holiday of the series' calendar.
    Holiday(Holiday),
    YearlySin(usize),
    YearlyCos(usize),
}

impl Term {
    /// The prior scale (standard deviation) of the coefficient, or `None` for a free one.
    pub(super) fn prior_scale(self, knot_scale: f64) -> Option<f64> {
        match self {
            Term::Knot(_) => Some(knot_scale),
            Term::YearlySin(_) | Term::YearlyCos(_) => Some(FOURIER_SCALE),
            Term::Holiday(_) => Some(HOLIDAY_SCALE),
            _ => None,
        }
    }
}

/// The design: the terms and the calendar they are evaluated on.
pub(super) struct Design {
    pub(super) start: Day,
    pub(super) holidays: Holidays,
    pub(super) span: f64,
    pub(super) terms: Vec<Term>,
    /// Past this day the trend's slope decays by [`DAMPING`] a day.
    pub(super) last: usize,
    /// The share of the fitted end slope carried past `last` (see [`recent_slope_share`]).
    pub(super) slope_share: f64,
}

impl Design {
    pub(super) fn new(
        start: Day,
        n: usize,
        month_days: &[MonthlyDay],
        holidays: &Holidays,
    ) -> Design {
        let mut terms = vec![Term::Intercept, Term::Trend];
        let mut knot = KNOT_SPACING;
        while knot + KNOT_TAIL <= n {
            terms.push(Term::Knot(knot));
            knot += KNOT_SPACING;
        }
        terms.extend((0..6).map(Term::Weekday));
        let first = MonthlyDay::Date(MonthDay::Day(1));
        terms.push(Term::MonthDay(first));
        terms.extend(
            month_days
                .iter()
                .filter(|k| **k != first)
                .map(|k| Term::MonthDay(*k)),
        );
        for holiday in holidays.all() {
            // A built-in holiday under way in the newest days is the same column as a change
            // of level there: fitted from that occurrence alone it would take the change, and
            // hand it back when the holiday ends. Only occurrences before the newest weeks
            // count; a listed event's dates are the user's word and always do.
            let settled = |t: usize| matches!(holiday, Holiday::Event(_)) || t + RECENT_DAYS <= n;
            let seen = (0..n)
                .filter(|t| {
                    let day = start.add_days(*t as i64);
                    holidays.contains(holiday, day)
                        && !holidays.contains(holiday, day.add_days(-1))
                        && settled(*t)
                })
                .count();
            if seen >= holidays.min_seen(holiday) {
                terms.push(Term::Holiday(holiday));
            }
        }
        if n >= MIN_YEARLY_DAYS {
            for k in 1..=FOURIER_ORDER {
                terms.push(Term::YearlySin(k));
                terms.push(Term::YearlyCos(k));
            }
        }
        Design {
            start,
            holidays: holidays.clone(),
            span: n as f64,
            terms,
            last: n.saturating_sub(1),
            slope_share: 1.0,
        }
    }

    /// The time the trend is evaluated at: the day itself in the history, and past its end
    /// the share of the end slope the recent weeks support, decaying by [`DAMPING`] a day, so
    /// growth is not compounded without limit.
    pub(super) fn trend_time(&self, t: usize) -> f64 {
        match t.checked_sub(self.last) {
            None | Some(0) => t as f64,
            Some(k) => {
                let damped = DAMPING * (1.0 - DAMPING.powi(k as i32)) / (1.0 - DAMPING);
                self.last as f64 + self.slope_share * damped
            }
        }
    }

    /// The row of day `t`.
    pub(super) fn row(&self, t: usize, out: &mut [f64]) {
        let day = self.start.add_days(t as i64);
        let keys = DayKeys::of_days(day, 1);
        self.row_on(t, day, &keys[0], out);
    }

    /// The row of day `t`, which is `day` with the month-day `keys`.
    fn row_on(&self, t: usize, day: Day, keys: &DayKeys, out: &mut [f64]) {
        let s = self.trend_time(t) / self.span;
        // Day of year as a fraction of a mean year, so leap years do not shift the season.
        let phase = 2.0 * std::f64::consts::PI * (day.ordinal() as f64 - 1.0) / 365.25;
        let (sin1, cos1) = phase.sin_cos();
        // sin/cos of k·phase by the angle-addition recurrence: two trig calls a row, not 20.
        let (mut sin_k, mut cos_k) = (0.0, 1.0);
        for (o, term) in out.iter_mut().zip(&self.terms) {
            *o = match *term {
                Term::Intercept => 1.0,
                Term::Trend => s,
                Term::Knot(k) => (s - k as f64 / self.span).max(0.0),
                Term::Shift(k) => f64::from(t >= k),
                Term::Weekday(w) => f64::from(day.weekday_index() == w),
                Term::MonthDay(key) => f64::from(keys.has(key)),
                Term::Holiday(holiday) => f64::from(self.holidays.contains(holiday, day)),
                Term::YearlySin(_) => {
                    (sin_k, cos_k) = (sin_k * cos1 + cos_k * sin1, cos_k * cos1 - sin_k * sin1);
                    sin_k
                }
                Term::YearlyCos(_) => cos_k,
            };
        }
    }

    pub(super) fn matrix(&self, n: usize) -> Rows {
        let p = self.terms.len();
        let mut data = vec![0.0; n * p];
        let keys = DayKeys::of_days(self.start, n);
        let mut day = self.start;
        for (t, (row, keys)) in data.chunks_exact_mut(p).zip(&keys).enumerate() {
            self.row_on(t, day, keys, row);
            day = day.add_days(1);
        }
        Rows { p, data }
    }
}

/// The design matrix, row-major: the normal equations and the shift search walk it by row.
pub(super) struct Rows {
    pub(super) p: usize,
    pub(super) data: Vec<f64>,
}

impl Rows {
    pub(super) fn len(&self) -> usize {
        self.data.len() / self.p
    }

    pub(super) fn iter(&self) -> std::slice::ChunksExact<'_, f64> {
        self.data.chunks_exact(self.p)
    }
}

/// A weighted ridge fit: coefficients, the factor of the normal matrix, residuals, scale.
pub(super) struct Fit {
    pub(super) beta: DVector<f64>,
    pub(super) normal: Cholesky<f64, Dyn>,
    pub(super) residuals: Vec<f64>,
    pub(super) sigma: f64,
}

impl Rows {
    /// The upper triangle of XᵀX, row-major, and Xᵀz: built once per design, so reweighting
    /// only has to correct the few rows whose weight is below one.
    pub(super) fn gram(&self, z: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let p = self.p;
        let mut upper = vec![0.0; p * p];
        let mut xtz = vec![0.0; p];
        for (row, zt) in self.iter().zip(z) {
            accumulate(&mut upper, &mut xtz, row, 1.0, *zt);
        }
        (upper, xtz)
    }
}

/// Adds `weight` × row rowᵀ to the upper triangle and `weight` × row × z to the vector.
pub(super) fn accumulate(upper: &mut [f64], xtz: &mut [f64], row: &[f64], weight: f64, z: f64) {
    let p = row.len();
    for j in 0..p {
        let a = weight * row[j];
        if a == 0.0 {
            continue;
        }
        xtz[j] += a * z;
        for (acc, v) in upper[j * p + j..(j + 1) * p].iter_mut().zip(&row[j..]) {
            *acc += a * v;
        }
    }
}

/// The regression of one series: the design, the response and their Gram matrix.
pub(super) struct Problem {
    pub(super) x: Rows,
    pub(super) z: Vec<f64>,
    pub(super) gram: Vec<f64>,
    pub(super) xtz: Vec<f64>,
    /// The prior scale of slope changes ([`KNOT_SCALE`], or looser for a steep trend).
    pub(super) knot_scale: f64,
}

impl Problem {
    pub(super) fn new(x: Rows, z: Vec<f64>) -> Problem {
        let (gram, xtz) = x.gram(&z);
        Problem {
            x,
            z,
            gram,
            xtz,
            knot_scale: KNOT_SCALE,
        }
    }

    /// Adds a level-shift column from day `at`; the Gram matrix grows by suffix sums.
    pub(super) fn add_shift(&mut self, at: usize) {
        let (n, p) = (self.x.len(), self.x.p);
        let q = p + 1;
        let mut data = Vec::with_capacity(n * q);
        let mut column = vec![0.0; p];
        let mut z_sum = 0.0;
        for (t, row) in self.x.iter().enumerate() {
            data.extend_from_slice(row);
            data.push(f64::from(t >= at));
            if t >= at {
                for (c, v) in column.iter_mut().zip(row) {
                    *c += v;
                }
                z_sum += self.z[t];
            }
        }
        let mut gram = vec![0.0; q * q];
        for j in 0..p {
            gram[j * q..j * q + p].copy_from_slice(&self.gram[j * p..(j + 1) * p]);
            gram[j * q + p] = column[j];
        }
        gram[p * q + p] = (n - at) as f64;
        self.gram = gram;
        self.xtz.push(z_sum);
        self.x = Rows { p: q, data };
    }

    /// The weighted ridge fit; `None` when the normal matrix is singular.
    pub(super) fn solve(&self, w: &[f64], terms: &[Term], sigma: f64) -> Option<Fit> {
        let p = self.x.p;
        let mut upper = self.gram.clone();
        let mut xtwz = self.xtz.clone();
        for ((row, wt), zt) in self.x.iter().zip(w).zip(&self.z) {
            if *wt < 1.0 {
                accumulate(&mut upper, &mut xtwz, row, wt - 1.0, *zt);
            }
        }
        let mut xtwx = DMatrix::<f64>::zeros(p, p);
        for j in 0..p {
            for k in j..p {
                xtwx[(j, k)] = upper[j * p + k];
                xtwx[(k, j)] = upper[j * p + k];
            }
            let prior = terms[j]
                .prior_scale(self.knot_scale)
                .map_or(1e-9, |s| (sigma / s).powi(2));
            xtwx[(j, j)] += prior;
        }
        let normal = Cholesky::new(xtwx)?;
        let beta = normal.solve(&DVector::from_vec(xtwz));
        let residuals: Vec<f64> = self
            .x
            .iter()
            .zip(&self.z)
            .map(|(row, zt)| zt - dot(row, beta.as_slice()))
            .collect();
        let mut spread: Vec<f64> = residuals.iter().map(|r| r.abs()).collect();
        let sigma = (1.4826 * median(&mut spread)).max(1e-6);
        Some(Fit {
            beta,
            normal,
            residuals,
            sigma,
        })
    }
}

/// The dot product of a design row and the coefficients, in four independent sums: the
/// residuals of every fit are the model's hottest loop, and one running sum waits on each add.
fn dot(row: &[f64], beta: &[f64]) -> f64 {
    let mut sums = [0.0; 4];
    let (rows, betas) = (row.chunks_exact(4), beta.chunks_exact(4));
    let tail: f64 = rows
        .remainder()
        .iter()
        .zip(betas.remainder())
        .map(|(a, b)| a * b)
        .sum();
    for (r, b) in rows.zip(betas) {
        for k in 0..4 {
            sums[k] += r[k] * b[k];
        }
    }
    (sums[0] + sums[1]) + (sums[2] + sums[3]) + tail
}

/// Fits with Huber reweighting; `None` when the normal matrix is singular.
pub(super) fn robust_fit(problem: &Problem, terms: &[Term]) -> Option<(Fit, Vec<f64>)> {
    let mut weights = vec![1.0; problem.z.len()];
    let mut fit = problem.solve(&weights, terms, 0.1)?;
    for _ in 0..ROBUST_PASSES {
        let limit = HUBER * fit.sigma;
        for (w, r) in weights.iter_mut().zip(&fit.residuals) {
            *w = if r.abs() <= limit {
                1.0
            } else {
                limit / r.abs()
            };
        }
        fit = problem.solve(&weights, terms, fit.sigma)?;
    }
    Some((fit, weights))
}
