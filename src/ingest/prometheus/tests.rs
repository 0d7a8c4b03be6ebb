use super::*;
use crate::domain::Scope;
use crate::domain::d as day;

fn daily(rows: &[(&str, &str, f64)]) -> Daily {
    rows.iter()
        .map(|(d, ns, q)| ((day(d), ns.to_string(), BTreeMap::new()), *q))
        .collect()
}

#[test]
fn allocation_adds_up_to_the_bill_to_the_cent_with_idle_as_the_rest() {
    let usage = [
        (
            UsageMetric::CpuCoreHours,
            daily(&[("2026-11-01", "a", 10.0), ("2026-11-01", "b", 20.0)]),
        ),
        (
            UsageMetric::MemoryGibHours,
            daily(&[("2026-11-01", "a", 33.3), ("2026-11-01", "b", 10.0)]),
        ),
        (UsageMetric::GpuHours, Daily::new()),
    ];
    let capacity = [
        daily(&[("2026-11-01", "", 96.0)]),
        daily(&[("2026-11-01", "", 384.0)]),
        Daily::new(),
    ];
    let allocation = PrometheusAllocation {
        scope: Scope::all(),
        weights: [0.65, 0.35, 0.0],
    };
    let bill = Money::new(1234.57, Currency::usd());
    let points = allocated(
        "k8s",
        &usage,
        &capacity,
        &allocation,
        &[(day("2026-11-01"), bill)],
    )
    .unwrap();
    let total: i64 = points.iter().map(|p| cents(p.cost.amount)).sum();
    assert_eq!(total, 123_457);
    let of = |ns: &str| {
        points
            .iter()
            .find(|p| p.dims.tags.get("namespace").map(String::as_str) == Some(ns))
            .map(|p| p.cost.amount)
            .unwrap()
    };
    // a: 0.65·10/96 + 0.35·33.3/384 = 0.09806 of the bill.
    assert!((of("a") - 1234.57 * (0.65 * 10.0 / 96.0 + 0.35 * 33.3 / 384.0)).abs() < 0.011);
    assert!(of(IDLE) > of("a") + of("b"));
}

#[test]
fn a_first_run_backfills_and_today_is_left_out() {
    let inputs = FetchInputs {
        today: day("2026-11-22"),
        history: Default::default(),
        billed: Vec::new(),
    };
    let w = window(&inputs, None).unwrap();
    assert_eq!((w.start(), w.end()), (day("2026-10-23"), day("2026-11-21")));
    assert_eq!(w.len_days(), 30);
}

#[test]
fn later_runs_reread_the_last_days_as_their_bills_settle() {
    let mut inputs = FetchInputs {
        today: day("2026-11-22"),
        history: Default::default(),
        billed: Vec::new(),
    };
    inputs.history.last_day = Some(day("2026-11-21"));
    let w = window(&inputs, None).unwrap();
    assert_eq!((w.start(), w.end()), (day("2026-11-19"), day("2026-11-21")));
    inputs.history.last_day = Some(day("2026-11-01"));
    assert_eq!(window(&inputs, None).unwrap().start(), day("2026-11-01"));
}
