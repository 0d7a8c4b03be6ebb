//! The Slack message built from fixed evaluations: within Slack's limits, and naming what it must.

use super::*;
use crate::domain::{
    Currency, Day, DayRange, Driver, Money, ObjectChange, ObjectKind, ObjectRef, Projection,
};

fn evaluation(name: &str) -> Evaluation {
    let day = Day::parse("2024-06-10").unwrap();
    Evaluation {
        budget: name.into(),
        as_of: day,
        amount: Money::new(100.0, Currency::usd()),
        projection: Projection {
            period: DayRange::month_of(day),
            actual_to_date: 50.0,
            reported_through: Some(day),
            forecast_days: 20,
            mean: 150.0,
            lo80: 120.0,
            hi80: 180.0,
            p_breach: 0.97,
        },
        status: Status::Breach,
        mode: BudgetMode::Enforce,
        forecast_error: None,
        steps: 2,
        plan: None,
        lagging: Vec::new(),
        drivers: vec![Driver {
            series: "service=EC2|team=ml".into(),
            projected: 90.0,
            previous: 40.0,
        }],
    }
}

fn alert<'a>(evaluations: &'a [Evaluation], actions: &'a [ActionRecord]) -> Value {
    build_message(&Alert {
        evaluations,
        budgets: &[],
        changes: &[],
        actions,
        anomalies: &[],
        forecasts: &[],
        report_url: None,
        run_id: 7,
    })
}

#[test]
fn a_message_keeps_to_fifty_blocks_and_counts_the_budgets_left_out() {
    let many: Vec<Evaluation> = (0..60).map(|i| evaluation(&format!("b{i:02}"))).collect();
    let m = alert(&many, &[]);
    let blocks = m["blocks"].as_array().unwrap();
    assert_eq!(blocks.len(), MAX_BLOCKS);
    let more = blocks[blocks.len() - 2]["text"]["text"].as_str().unwrap();
    assert_eq!(more, "… and 13 more budgets: see the report.");
}

#[test]
fn a_long_section_is_cut_at_a_line_with_a_count_of_what_was_left_out() {
    let lines: Vec<String> = (0..400)
        .map(|i| format!("• line {i:03} of a long list"))
        .collect();
    let text = fit_section(&lines);
    assert!(text.chars().count() <= MAX_SECTION_CHARS, "{}", text.len());
    let kept = text.lines().filter(|l| l.starts_with('•')).count();
    assert!(
        text.ends_with(&format!("… and {} more", 400 - kept)),
        "{text}"
    );
}

#[test]
fn objects_past_ten_are_counted_and_the_message_names_amount_over_and_drivers() {
    let records: Vec<ActionRecord> = (0..25)
        .map(|i| ActionRecord {
            operation: Operation::Apply,
            change: ObjectChange {
                budget: "ml".into(),
                step: 3,
                target: ObjectRef {
                    kind: ObjectKind::CronJob,
                    namespace: "ml".into(),
                    name: format!("job-{i}"),
                },
                fields: vec![],
            },
            outcome: Outcome::Done,
            detail: String::new(),
        })
        .collect();
    let m = alert(&[evaluation("ml")], &records);
    let text = m["blocks"][1]["text"]["text"].as_str().unwrap();
    assert!(text.contains("… and 15 more objects"), "{text}");
    assert!(text.contains("*50.00 USD over*"), "{text}");
    assert!(
        text.contains("Drivers: service=EC2|team=ml +50.00 (90.00 vs 40.00 last period)"),
        "{text}"
    );
    assert!(
        text.contains("`costcast act restore --budget ml`"),
        "{text}"
    );
}
