//! Hysteresis: a budget starts its ladder on a breach and climbs one step when the breach
//! persists (a further day in breach) or grows (the projected overrun rose by a tenth of the
//! budget since the last step), and restores only after P(breach) has stayed below the recover
//! level for `recover_days` consecutive days. Counting days, not runs, keeps a re-run of the
//! same day with the same projection from escalating twice.

use crate::domain::{Budget, BudgetState, Engaged, Evaluation, Status};

/// How much the projected overrun must grow, as a share of the budget, to climb a step within
/// a day.
pub const GROWTH_STEP: f64 = 0.1;

/// Moves `previous` on by `evaluation` (whose status is the raw one from P(breach)), sets the
/// evaluation's status and steps to the hysteresis result, and returns the new state.
///
/// A state from an earlier period is dropped: the next period starts with nothing in effect,
/// which is what restores a budget's changes when its period ends.
pub fn advance(
    budget: &Budget,
    previous: Option<&BudgetState>,
    evaluation: &mut Evaluation,
) -> BudgetState {
    let period_start = evaluation.projection.period.start();
    let as_of = evaluation.as_of;
    let previous = previous.filter(|s| s.period_start == period_start);
    let new_day = previous.is_none_or(|s| as_of > s.last_day);
    let ladder = budget.actions.len() as u32;
    let p = evaluation.projection.p_breach;
    let raw = evaluation.status;
    let over = evaluation.projection.mean - budget.amount.amount;
    let grew = |e: &Engaged| over - e.over_at_step >= GROWTH_STEP * budget.amount.amount;

    let engaged = match previous.and_then(|s| s.engaged) {
        None if raw == Status::Breach => Some(Engaged {
            steps: ladder.min(1),
            calm_days: 0,
            over_at_step: over,
        }),
        None => None,
        Some(e) if raw == Status::Breach => {
            let climb = (new_day || grew(&e)) && e.steps < ladder;
            Some(Engaged {
                steps: if climb {
                    e.steps + 1
                } else {
                    e.steps.min(ladder)
                },
                calm_days: 0,
                over_at_step: if climb { over } else { e.over_at_step },
            })
        }
        Some(e) if p < budget.thresholds.recover => {
            let calm_days = if new_day {
                e.calm_days + 1
            } else {
                e.calm_days
            };
            (calm_days < budget.thresholds.recover_days).then_some(Engaged {
                calm_days,
                steps: e.steps.min(ladder),
                ..e
            })
        }
        Some(e) => Some(Engaged {
            calm_days: 0,
            steps: e.steps.min(ladder),
            ..e
        }),
    };
    let status = match engaged {
        Some(_) if raw != Status::Breach => Status::Recovering,
        _ => raw,
    };
    evaluation.status = status;
    evaluation.steps = engaged.map_or(0, |e| e.steps);
    BudgetState {
        period_start,
        last_day: previous.map_or(as_of, |s| s.last_day.max(as_of)),
        status,
        engaged,
    }
}

/// The state of a budget whose data is too old to act on: the ladder stays where it was (off
/// when it never moved), whatever the evaluation says, so it neither climbs on a projection
/// that may be wrong nor restores on one that may be right; the evaluation reports those steps.
pub fn hold(previous: Option<&BudgetState>, evaluation: &mut Evaluation) -> BudgetState {
    let state = previous.cloned().unwrap_or(BudgetState {
        period_start: evaluation.projection.period.start(),
        last_day: evaluation.as_of,
        status: evaluation.status,
        engaged: None,
    });
    evaluation.steps = state.steps();
    state
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{
        ActionKind, ActionRule, BudgetMode, Currency, Day, DayRange, Money, Projection, Thresholds,
    };

    fn budget(ladder: usize) -> Budget {
        Budget {
            actions: (0..ladder)
                .map(|_| ActionRule {
                    kind: ActionKind::Alert,
                    namespaces: vec![],
                    selector: String::new(),
                })
                .collect(),
            ..Budget::monthly("b", 100.0)
        }
    }

    fn evaluation(day: &str, p: f64) -> Evaluation {
        let as_of = Day::parse(day).unwrap();
        let t = Thresholds::default();
        let status = if p >= t.breach {
            Status::Breach
        } else if p >= t.warn {
            Status::Warn
        } else {
            Status::Ok
        };
        Evaluation {
            budget: "b".into(),
            as_of,
            amount: Money::new(100.0, Currency::usd()),
            projection: Projection {
                period: DayRange::month_of(as_of),
                actual_to_date: 0.0,
                reported_through: None,
                forecast_days: 0,
                mean: 0.0,
                lo80: 0.0,
                hi80: 0.0,
                p_breach: p,
            },
            status,
            mode: BudgetMode::Observe,
            forecast_error: None,
            steps: 0,
            plan: None,
            lagging: Vec::new(),
            drivers: vec![],
        }
    }

    /// Runs the days through `advance`, returning (status, steps) after each.
    fn walk(ladder: usize, days: &[(&str, f64)]) -> Vec<(Status, u32)> {
        let b = budget(ladder);
        let mut state = None;
        days.iter()
            .map(|(day, p)| {
                let mut e = evaluation(day, *p);
                let next = advance(&b, state.as_ref(), &mut e);
                assert_eq!(next.steps(), e.steps);
                state = Some(next);
                (e.status, e.steps)
            })
            .collect()
    }

    #[test]
    fn a_persisting_breach_climbs_one_step_a_day_up_to_the_ladder() {
        let seen = walk(
            3,
            &[
                ("2024-06-01", 0.6),
                ("2024-06-02", 0.9),
                ("2024-06-03", 0.85),
                ("2024-06-04", 0.95),
                ("2024-06-05", 0.99),
            ],
        );
        assert_eq!(
            seen,
            vec![
                (Status::Warn, 0),
                (Status::Breach, 1),
                (Status::Breach, 2),
                (Status::Breach, 3),
                (Status::Breach, 3),
            ]
        );
    }

    #[test]
    fn a_second_run_on_the_same_day_does_not_escalate() {
        let seen = walk(
            3,
            &[
                ("2024-06-02", 0.9),
                ("2024-06-02", 0.9),
                ("2024-06-02", 0.95),
            ],
        );
        assert_eq!(seen, vec![(Status::Breach, 1); 3]);
    }

    #[test]
    fn recovery_needs_consecutive_calm_days_below_the_lower_level() {
        let seen = walk(
            2,
            &[
                ("2024-06-01", 0.9),
                ("2024-06-02", 0.9),
                // Between recover (0.3) and breach: recovering, nothing restored, calm reset.
                ("2024-06-03", 0.5),
                ("2024-06-04", 0.2),
                // Not calm: the count starts again.
                ("2024-06-05", 0.4),
                ("2024-06-06", 0.1),
                ("2024-06-07", 0.1),
            ],
        );
        assert_eq!(
            seen,
            vec![
                (Status::Breach, 1),
                (Status::Breach, 2),
                (Status::Recovering, 2),
                (Status::Recovering, 2),
                (Status::Recovering, 2),
                (Status::Recovering, 2),
                (Status::Ok, 0),
            ]
        );
    }

    #[test]
    fn a_breach_that_grows_within_a_day_climbs_a_step() {
        let b = budget(3);
        let at = |mean: f64| {
            let mut e = evaluation("2024-06-02", 0.95);
            e.projection.mean = mean;
            e
        };
        let mut e = at(110.0);
        let first = advance(&b, None, &mut e);
        // The same day, the overrun grew by 5% of the budget: not enough.
        let mut e = at(115.0);
        let same = advance(&b, Some(&first), &mut e);
        assert_eq!(same.steps(), 1);
        // ... and then by 10% over the step's overrun: one step more, and no further.
        let mut e = at(120.0);
        let grown = advance(&b, Some(&same), &mut e);
        assert_eq!(grown.steps(), 2);
        let mut e = at(121.0);
        assert_eq!(advance(&b, Some(&grown), &mut e).steps(), 2);
    }

    #[test]
    fn a_new_period_starts_with_nothing_in_effect() {
        let seen = walk(
            3,
            &[
                ("2024-06-29", 0.9),
                ("2024-06-30", 0.9),
                ("2024-07-01", 0.2),
            ],
        );
        assert_eq!(seen[1], (Status::Breach, 2));
        assert_eq!(seen[2], (Status::Ok, 0));
    }

    #[test]
    fn an_empty_ladder_still_has_hysteresis() {
        let seen = walk(0, &[("2024-06-01", 0.9), ("2024-06-02", 0.6)]);
        assert_eq!(seen, vec![(Status::Breach, 0), (Status::Recovering, 0)]);
    }
}
