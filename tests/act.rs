//! Budgets that act, against an in-process Kubernetes API server that keeps object state and
//! enforces the RBAC in deploy/kubernetes/rbac.yaml: assertions are on the objects before, after acting
//! and after restore, and on the rows in the store, on both stores.

mod common;

use chrono::{DateTime, NaiveTime, Utc};
use common::fake_kube::FakeKube;
use common::*;
use costcast::app::App;
use costcast::domain::{Day, ObjectKind, Operation, Outcome, Status};
use costcast::pipeline::{RunError, RunOptions, RunReport, Step, run_once};
use serde_json::{Value, json};

fn day(s: &str) -> Day {
    Day::parse(s).unwrap()
}

fn noon(d: &str) -> DateTime<Utc> {
    day(d)
        .date()
        .and_time(NaiveTime::from_hms_opt(12, 0, 0).unwrap())
        .and_utc()
}

const BREACH: f64 = 2500.0;
const OK: f64 = 4000.0;

/// The ladder: alert, halve autoscaler caps, suspend CronJobs, scale workloads to zero.
fn budget_toml(amount: f64, mode: &str, kube: &FakeKube, extra: &str) -> String {
    format!(
        r#"
[kubernetes]
api_url = "{url}"

[act]
{extra}

[[budgets]]
name = "ml"
amount = {amount}
mode = "{mode}"

[[budgets.actions]]
kind = "alert"

[[budgets.actions]]
kind = "lower-autoscaler-caps"
factor = 0.5
namespaces = ["ml", "kube-system"]
selector = "costcast.io/tier=batch"

[[budgets.actions]]
kind = "suspend-cronjobs"
suspend_jobs = true
namespaces = ["ml"]
selector = "costcast.io/tier=batch"

[[budgets.actions]]
kind = "scale-down"
replicas = 0
namespaces = ["ml"]
selector = "costcast.io/tier=batch"
"#,
        url = kube.url
    )
}

fn meta(name: &str, ns: &str, labels: Value) -> Value {
    json!({"name": name, "namespace": ns, "labels": labels})
}

fn batch() -> Value {
    json!({"costcast.io/tier": "batch"})
}

/// A cluster with one object of each kind the ladder reaches, plus the ones it must not.
async fn cluster() -> FakeKube {
    let kube = FakeKube::start().await;
    kube.enforce_rbac(include_str!("../deploy/kubernetes/rbac.yaml"));
    kube.put(json!({"kind": "HorizontalPodAutoscaler", "metadata": meta("api", "ml", batch()),
        "spec": {"minReplicas": 2, "maxReplicas": 10,
                 "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "api"}}}));
    kube.put(
        json!({"kind": "ScaledObject", "metadata": meta("queue", "ml", batch()),
        "spec": {"maxReplicaCount": 20, "scaleTargetRef": {"name": "consumer"}}}),
    );
    // The HPA KEDA generates for that ScaledObject: patching it would be reverted.
    kube.put(json!({"kind": "HorizontalPodAutoscaler",
        "metadata": meta("keda-hpa-queue", "ml", json!({"costcast.io/tier": "batch", "scaledobject.keda.sh/name": "queue"})),
        "spec": {"minReplicas": 1, "maxReplicas": 20,
                 "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "consumer"}}}));
    kube.put(
        json!({"kind": "CronJob", "metadata": meta("nightly", "ml", batch()),
        "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {}}},
        "status": {"lastScheduleTime": "2024-06-01T00:00:00Z"}}),
    );
    kube.put(json!({"kind": "CronJob", "metadata": meta("hourly", "ml", batch()),
        "spec": {"schedule": "0 * * * *", "suspend": false, "startingDeadlineSeconds": 600, "jobTemplate": {"spec": {}}}}));
    kube.put(json!({"kind": "Job",
        "metadata": {"name": "nightly-28612345", "namespace": "ml",
                     "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob", "name": "nightly", "uid": "u1"}]},
        "spec": {"parallelism": 1}, "status": {"active": 1}}));
    kube.put(json!({"kind": "CronJob", "metadata": meta("billing", "ml", json!({"costcast.io/tier": "critical"})),
        "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": {}}}}));
    kube.put(
        json!({"kind": "Deployment", "metadata": meta("worker", "ml", batch()),
        "spec": {"replicas": 4}}),
    );
    kube.put(
        json!({"kind": "StatefulSet", "metadata": meta("cache", "ml", batch()),
        "spec": {"replicas": 3}}),
    );
    // A workload an HPA manages: scaling it would be undone, so its HPA is capped instead.
    kube.put(
        json!({"kind": "Deployment", "metadata": meta("trainer", "ml", batch()),
        "spec": {"replicas": 3}}),
    );
    kube.put(json!({"kind": "HorizontalPodAutoscaler", "metadata": meta("trainer", "ml", json!({})),
        "spec": {"minReplicas": 2, "maxReplicas": 6,
                 "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "trainer"}}}));
    kube.put(json!({"kind": "Deployment", "metadata": meta("web", "ml", json!({"costcast.io/tier": "critical"})),
        "spec": {"replicas": 5}}));
    kube
}

/// The spec, labels and annotations of every object, to compare before and after.
fn snapshot(kube: &FakeKube) -> Vec<(String, Value)> {
    let objects = [
        ("HorizontalPodAutoscaler", "api"),
        ("ScaledObject", "queue"),
        ("HorizontalPodAutoscaler", "keda-hpa-queue"),
        ("CronJob", "nightly"),
        ("CronJob", "hourly"),
        ("Job", "nightly-28612345"),
        ("CronJob", "billing"),
        ("Deployment", "worker"),
        ("StatefulSet", "cache"),
        ("Deployment", "trainer"),
        ("HorizontalPodAutoscaler", "trainer"),
        ("Deployment", "web"),
    ];
    objects
        .iter()
        .map(|(kind, name)| {
            let o = kube.get(kind, "ml", name);
            (
                format!("{kind}/{name}"),
                json!({"spec": o["spec"], "labels": o["metadata"]["labels"],
                       "annotations": o["metadata"]["annotations"]}),
            )
        })
        .collect()
}

async fn ctx_with(db: &TestDb, amount: f64, mode: &str, kube: &FakeKube, extra: &str) -> App {
    let dir = std::env::temp_dir();
    context(config(&budget_toml(amount, mode, kube, extra), &dir, db)).await
}

/// One daily run of budgets → act → notify as of `d`.
async fn daily(ctx: &App, d: &str) -> RunReport {
    run_once(
        ctx,
        "daily",
        &[Step::Budgets, Step::Act, Step::Notify],
        noon(d),
        &RunOptions::default(),
    )
    .await
    .expect("the run succeeds")
}

/// One run of the act step alone as of `d`.
async fn act_once(ctx: &App, d: &str) -> Result<RunReport, RunError> {
    run_once(ctx, "act", &[Step::Act], noon(d), &RunOptions::default()).await
}

/// A budget in breach on each of `days` (one daily run each): the ladder is `days.len()` steps up.
async fn breached(db: &TestDb, kube: &FakeKube, extra: &str, days: &[&str]) -> App {
    let ctx = ctx_with(db, BREACH, "enforce", kube, extra).await;
    store_forecast(&ctx).await;
    for d in days {
        daily(&ctx, d).await;
    }
    ctx
}

/// Three days of breach evaluated but not acted on: step 3 is due at the next act.
async fn evaluated_to_step_3(db: &TestDb, kube: &FakeKube) -> App {
    let ctx = ctx_with(db, BREACH, "enforce", kube, "").await;
    store_forecast(&ctx).await;
    for d in ["2024-06-10", "2024-06-11", "2024-06-12"] {
        run_once(
            &ctx,
            "budgets",
            &[Step::Budgets],
            noon(d),
            &RunOptions::default(),
        )
        .await
        .unwrap();
    }
    ctx
}

/// Records of `r` with `outcome`.
fn count(r: &RunReport, outcome: Outcome) -> usize {
    r.actions.iter().filter(|a| a.outcome == outcome).count()
}

/// Objects `r` restored.
fn restored(r: &RunReport) -> usize {
    r.actions
        .iter()
        .filter(|a| a.operation == Operation::Restore && a.outcome == Outcome::Done)
        .count()
}

/// The budget's status and ladder step after `r`.
fn ladder(r: &RunReport) -> (Status, u32) {
    (r.evaluations[0].status, r.evaluations[0].steps)
}

fn spec(kube: &FakeKube, kind: &str, name: &str, field: &str) -> Value {
    kube.get(kind, "ml", name)["spec"][field].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_budget_walks_from_ok_to_breach_up_its_ladder_and_back_with_everything_restored_on_both_stores()
 {
    for db in both_dbs().await {
        let b = db.backend;
        let kube = cluster().await;
        let before = snapshot(&kube);
        let ok = ctx_with(&db, OK, "enforce", &kube, "").await;
        store_forecast(&ok).await;

        // Day 1: ok. Nothing happens.
        let r = daily(&ok, "2024-06-09").await;
        assert_eq!(r.evaluations[0].status, Status::Ok, "{b}");
        assert!(kube.patches().is_empty(), "{b}");

        // Day 2: breach. Step 1 alerts and changes nothing.
        let breach = ctx_with(&db, BREACH, "enforce", &kube, "").await;
        let r = daily(&breach, "2024-06-10").await;
        assert_eq!(ladder(&r), (Status::Breach, 1), "{b}");
        assert!(kube.patches().is_empty(), "{b}");
        assert!(r.alert.is_some(), "{b}: a breach alerts");

        // Day 3: the breach persists. Step 2 halves the autoscaler caps.
        let r = daily(&breach, "2024-06-11").await;
        assert_eq!(r.evaluations[0].steps, 2, "{b}");
        assert_eq!(
            spec(&kube, "HorizontalPodAutoscaler", "api", "maxReplicas"),
            json!(5),
            "{b}"
        );
        assert_eq!(
            spec(&kube, "HorizontalPodAutoscaler", "api", "minReplicas"),
            json!(2),
            "{b}"
        );
        assert_eq!(
            spec(&kube, "ScaledObject", "queue", "maxReplicaCount"),
            json!(10),
            "{b}"
        );
        assert_eq!(
            spec(
                &kube,
                "HorizontalPodAutoscaler",
                "keda-hpa-queue",
                "maxReplicas"
            ),
            json!(20),
            "{b}: KEDA's HPA is left to KEDA"
        );
        assert_eq!(
            spec(&kube, "CronJob", "nightly", "suspend"),
            Value::Null,
            "{b}: step 3 is not in effect yet"
        );
        let api = kube.get("HorizontalPodAutoscaler", "ml", "api");
        assert_eq!(
            api["metadata"]["labels"]["costcast.io/throttled"],
            json!("true"),
            "{b}"
        );
        let record: Value = serde_json::from_str(
            api["metadata"]["annotations"]["costcast.io/original"]
                .as_str()
                .expect("annotated"),
        )
        .unwrap();
        assert_eq!(record["budget"], json!("ml"), "{b}");
        assert_eq!(
            record["fields"][0],
            json!({"field": "spec.maxReplicas", "original": 10, "set": 5}),
            "{b}"
        );
        let skipped: Vec<_> = r
            .actions
            .iter()
            .filter(|a| a.outcome == Outcome::Skipped)
            .collect();
        assert!(
            skipped.iter().any(|a| a.detail.contains("KEDA")),
            "{b}: {skipped:?}"
        );
        assert!(
            skipped
                .iter()
                .any(|a| a.detail == "namespace kube-system is protected"),
            "{b}"
        );

        // Day 4: step 3 suspends the batch CronJobs and the Job one of them is running.
        let r = daily(&breach, "2024-06-12").await;
        assert_eq!(r.evaluations[0].steps, 3, "{b}");
        assert_eq!(
            spec(&kube, "CronJob", "nightly", "suspend"),
            json!(true),
            "{b}"
        );
        assert_eq!(
            spec(&kube, "CronJob", "hourly", "suspend"),
            json!(true),
            "{b}"
        );
        assert_eq!(
            spec(&kube, "Job", "nightly-28612345", "suspend"),
            json!(true),
            "{b}"
        );
        assert_eq!(
            spec(&kube, "CronJob", "billing", "suspend"),
            Value::Null,
            "{b}: critical"
        );

        // Day 5: step 4 scales the workloads down, and caps the HPA of the one it manages.
        let r = daily(&breach, "2024-06-13").await;
        assert_eq!(r.evaluations[0].steps, 4, "{b}");
        assert_eq!(
            spec(&kube, "Deployment", "worker", "replicas"),
            json!(0),
            "{b}"
        );
        assert_eq!(
            spec(&kube, "StatefulSet", "cache", "replicas"),
            json!(0),
            "{b}"
        );
        assert_eq!(
            spec(&kube, "Deployment", "trainer", "replicas"),
            json!(3),
            "{b}: its HPA is capped instead"
        );
        assert_eq!(
            spec(&kube, "HorizontalPodAutoscaler", "trainer", "maxReplicas"),
            json!(1),
            "{b}"
        );
        assert_eq!(
            spec(&kube, "HorizontalPodAutoscaler", "trainer", "minReplicas"),
            json!(1),
            "{b}"
        );
        assert_eq!(
            spec(&kube, "Deployment", "web", "replicas"),
            json!(5),
            "{b}: critical"
        );
        let held = breach.store.throttled(Some("ml")).await.unwrap();
        assert_eq!(held.len(), 8, "{b}: {held:?}");

        // Every change went to the object or its scale subresource, as costcast.
        let patches = kube.patches();
        assert!(
            patches
                .iter()
                .all(|p| p.query.contains("fieldManager=costcast")),
            "{b}"
        );
        for untouchable in [
            "keda-hpa-queue",
            "cronjobs/billing",
            "deployments/web",
            "kube-system",
        ] {
            assert!(
                !patches.iter().any(|p| p.path.contains(untouchable)),
                "{b}: {untouchable} was patched"
            );
        }
        assert!(
            patches
                .iter()
                .any(|p| p.path.ends_with("deployments/worker/scale")),
            "{b}"
        );

        // Days 6-7: the forecast recovers. The first calm day holds everything.
        let r = daily(&ok, "2024-06-14").await;
        assert_eq!(ladder(&r), (Status::Recovering, 4), "{b}");
        assert_eq!(
            spec(&kube, "Deployment", "worker", "replicas"),
            json!(0),
            "{b}"
        );

        // The second calm day restores every object exactly.
        let r = daily(&ok, "2024-06-15").await;
        assert_eq!(ladder(&r), (Status::Ok, 0), "{b}");
        assert_eq!(restored(&r), 8, "{b}: {:?}", r.actions);
        let mut after = snapshot(&kube);
        // The one intended difference: nightly missed over 100 five-minute schedules while
        // suspended, so it gets a starting deadline or it would never start again.
        let nightly = &mut after
            .iter_mut()
            .find(|(k, _)| k == "CronJob/nightly")
            .unwrap()
            .1;
        assert_eq!(
            nightly["spec"]["startingDeadlineSeconds"],
            json!(3600),
            "{b}"
        );
        nightly["spec"]
            .as_object_mut()
            .unwrap()
            .remove("startingDeadlineSeconds");
        for ((name, was), (_, now)) in before.iter().zip(&after) {
            let normalise = |v: &Value| {
                let mut v = v.clone();
                // An emptied label or annotation map is the same as none.
                for k in ["labels", "annotations"] {
                    if v[k] == json!({}) {
                        v[k] = Value::Null;
                    }
                }
                v
            };
            assert_eq!(
                normalise(was),
                normalise(now),
                "{b}: {name} not restored exactly"
            );
        }
        assert!(ok.store.throttled(None).await.unwrap().is_empty(), "{b}");
        let log = ok.store.actions(r.run_id).await.unwrap();
        assert_eq!(log.len(), 8, "{b}");
        assert!(
            log.iter()
                .any(|a| a.change.target.kind == ObjectKind::CronJob
                    && a.detail.contains("startingDeadlineSeconds")),
            "{b}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn restore_works_from_the_annotations_alone_when_the_store_is_lost() {
    let db = sqlite_db();
    let kube = cluster().await;
    let before = snapshot(&kube);
    let breach = breached(
        &db,
        &kube,
        "",
        &["2024-06-10", "2024-06-11", "2024-06-12", "2024-06-13"],
    )
    .await;
    assert_eq!(breach.store.throttled(None).await.unwrap().len(), 8);

    // A new, empty database: nothing but the objects' annotations says what changed.
    let fresh = sqlite_db();
    let lost = ctx_with(&fresh, BREACH, "enforce", &kube, "").await;
    assert!(lost.store.throttled(None).await.unwrap().is_empty());
    let report = costcast::pipeline::restore(&lost, None, false, noon("2024-06-13"))
        .await
        .expect("restore runs");
    let done = count(&report, Outcome::Done);
    assert_eq!(done, 8, "{:?}", report.actions);
    for ((name, was), (_, now)) in before.iter().zip(snapshot(&kube).iter()) {
        if name == "CronJob/nightly" {
            assert_eq!(now["spec"]["suspend"], Value::Null);
            continue;
        }
        assert_eq!(was["spec"], now["spec"], "{name}");
        assert_eq!(
            now["annotations"].get("costcast.io/original"),
            None,
            "{name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_person_changing_a_throttled_object_is_a_conflict_and_is_not_overwritten() {
    for db in both_dbs().await {
        let b = db.backend;
        let kube = cluster().await;
        let breach = breached(&db, &kube, "", &["2024-06-10", "2024-06-11", "2024-06-12"]).await;
        assert_eq!(
            spec(&kube, "CronJob", "hourly", "suspend"),
            json!(true),
            "{b}"
        );
        // Someone needs the job back today and the API's cap higher.
        kube.edit(
            "CronJob",
            "ml",
            "hourly",
            json!({"spec": {"suspend": false}}),
        );
        kube.edit(
            "HorizontalPodAutoscaler",
            "ml",
            "api",
            json!({"spec": {"maxReplicas": 8}}),
        );

        let restore = costcast::pipeline::restore(&breach, Some("ml"), false, noon("2024-06-12"))
            .await
            .expect("restore runs");
        let conflicts: Vec<_> = restore
            .actions
            .iter()
            .filter(|a| a.outcome == Outcome::Conflict)
            .collect();
        assert_eq!(conflicts.len(), 2, "{b}: {:?}", restore.actions);
        assert!(
            conflicts
                .iter()
                .any(|c| c.detail.contains("spec.maxReplicas is 8 (costcast set 5)")),
            "{b}: {conflicts:?}"
        );
        // The person's values stand; the rest went back.
        assert_eq!(
            spec(&kube, "CronJob", "hourly", "suspend"),
            json!(false),
            "{b}"
        );
        assert_eq!(
            spec(&kube, "HorizontalPodAutoscaler", "api", "maxReplicas"),
            json!(8),
            "{b}"
        );
        assert_eq!(
            spec(&kube, "ScaledObject", "queue", "maxReplicaCount"),
            json!(20),
            "{b}"
        );
        assert_eq!(
            spec(&kube, "CronJob", "nightly", "suspend"),
            Value::Null,
            "{b}"
        );
        // costcast let go of the conflicting objects: no marker, no row.
        let api = kube.get("HorizontalPodAutoscaler", "ml", "api");
        assert_eq!(
            api["metadata"]["annotations"].get("costcast.io/original"),
            None,
            "{b}"
        );
        assert!(
            breach.store.throttled(None).await.unwrap().is_empty(),
            "{b}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_conflict_is_named_in_the_alert() {
    let db = sqlite_db();
    let kube = cluster().await;
    breached(&db, &kube, "", &["2024-06-10", "2024-06-11"]).await;
    kube.edit(
        "ScaledObject",
        "ml",
        "queue",
        json!({"spec": {"maxReplicaCount": 15}}),
    );
    let ok = ctx_with(&db, OK, "enforce", &kube, "").await;
    daily(&ok, "2024-06-12").await;
    let r = daily(&ok, "2024-06-13").await;
    let text = r.alert.expect("the recovery alerts").to_string();
    assert!(
        text.contains("Conflict, left alone ScaledObject ml/queue"),
        "{text}"
    );
    assert!(
        text.contains("maxReplicaCount is 15 (costcast set 10)"),
        "{text}"
    );
    assert!(text.contains("back to ok"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn observe_mode_plans_and_records_but_changes_nothing() {
    for db in both_dbs().await {
        let b = db.backend;
        let kube = cluster().await;
        let before = snapshot(&kube);
        let ctx = ctx_with(&db, BREACH, "observe", &kube, "").await;
        store_forecast(&ctx).await;
        let mut last = None;
        for d in ["2024-06-10", "2024-06-11", "2024-06-12", "2024-06-13"] {
            last = Some(daily(&ctx, d).await);
        }
        let r = last.unwrap();
        assert_eq!(r.evaluations[0].steps, 4, "{b}");
        assert!(
            kube.patches().is_empty(),
            "{b}: observe mode patched something"
        );
        assert_eq!(snapshot(&kube), before, "{b}");
        let planned = count(&r, Outcome::Planned);
        assert_eq!(planned, 8, "{b}: {:?}", r.actions);
        assert!(ctx.store.throttled(None).await.unwrap().is_empty(), "{b}");
        let logged = ctx.store.actions(r.run_id).await.unwrap();
        assert_eq!(logged.len(), r.actions.len(), "{b}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_run_of_an_enforced_budget_changes_nothing() {
    let db = sqlite_db();
    let kube = cluster().await;
    let ctx = ctx_with(&db, BREACH, "enforce", &kube, "").await;
    store_forecast(&ctx).await;
    for d in ["2024-06-10", "2024-06-11"] {
        let r = run_once(
            &ctx,
            "daily",
            &[Step::Budgets, Step::Act],
            noon(d),
            &RunOptions {
                dry_run: true,
                ..RunOptions::default()
            },
        )
        .await
        .unwrap();
        if d == "2024-06-11" {
            assert!(r.actions.iter().any(|a| a.outcome == Outcome::Planned));
        }
    }
    assert!(kube.patches().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_change_limit_caps_objects_changed_per_run_and_the_next_run_continues() {
    for db in both_dbs().await {
        let b = db.backend;
        let kube = cluster().await;
        let ctx = breached(&db, &kube, "max_changes_per_run = 1", &["2024-06-10"]).await;
        // Step 2 reaches two autoscalers; the limit lets one through.
        let r = daily(&ctx, "2024-06-11").await;
        let done = count(&r, Outcome::Done);
        let limited: Vec<_> = r
            .actions
            .iter()
            .filter(|a| a.detail.contains("change limit of 1"))
            .collect();
        assert_eq!((done, limited.len()), (1, 1), "{b}: {:?}", r.actions);
        assert_eq!(ctx.store.throttled(None).await.unwrap().len(), 1, "{b}");
        // The next day climbs to step 3 and finishes step 2 first, one object again.
        let r = daily(&ctx, "2024-06-12").await;
        assert_eq!(count(&r, Outcome::Done), 1, "{b}");
        assert_eq!(
            spec(&kube, "HorizontalPodAutoscaler", "api", "maxReplicas"),
            json!(5),
            "{b}"
        );
        assert_eq!(
            spec(&kube, "ScaledObject", "queue", "maxReplicaCount"),
            json!(10),
            "{b}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_act_runs_started_at_the_same_moment_make_one_set_of_changes() {
    for db in both_dbs().await {
        let b = db.backend;
        let kube = cluster().await;
        let setup = evaluated_to_step_3(&db, &kube).await;
        // Two runners, each with its own connections, as two pods would be.
        let one = ctx_with(&db, BREACH, "enforce", &kube, "").await;
        let two = ctx_with(&db, BREACH, "enforce", &kube, "").await;
        let act = |ctx| async move { act_once(ctx, "2024-06-12").await };
        let (r1, r2) = tokio::join!(act(&one), act(&two));
        let (r1, r2) = (r1.expect("first runner"), r2.expect("second runner"));

        let done = |r: &RunReport| count(r, Outcome::Done);
        // Step 2: HPA api, ScaledObject queue. Step 3: CronJobs nightly, hourly; Job.
        assert_eq!(
            done(&r1) + done(&r2),
            5,
            "{b}: {:?} / {:?}",
            r1.actions,
            r2.actions
        );
        assert!(
            done(&r1) == 0 || done(&r2) == 0,
            "{b}: both runners changed objects"
        );
        let failed: Vec<_> = r1
            .actions
            .iter()
            .chain(&r2.actions)
            .filter(|a| a.outcome == Outcome::Failed)
            .collect();
        assert!(failed.is_empty(), "{b}: {failed:?}");
        let object_patches = kube.patches().len();
        assert_eq!(object_patches, 5, "{b}: each object patched once");
        assert_eq!(setup.store.throttled(None).await.unwrap().len(), 5, "{b}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn api_errors_become_failed_records_that_the_next_run_retries() {
    let db = sqlite_db();
    let kube = cluster().await;
    let ctx = breached(&db, &kube, "", &["2024-06-10"]).await;
    kube.fail("PATCH", "horizontalpodautoscalers/api", 409, 1);
    kube.fail("PATCH", "scaledobjects/queue", 403, 1);
    let r = daily(&ctx, "2024-06-11").await;
    let failed: Vec<_> = r
        .actions
        .iter()
        .filter(|a| a.outcome == Outcome::Failed)
        .collect();
    assert_eq!(failed.len(), 2, "{:?}", r.actions);
    assert!(
        failed
            .iter()
            .any(|f| f.detail.contains("409") && f.detail.contains("next run retries")),
        "{failed:?}"
    );
    assert!(
        failed
            .iter()
            .any(|f| f.detail.contains("403") && f.detail.contains("deploy/kubernetes/rbac.yaml")),
        "{failed:?}"
    );
    assert_eq!(
        spec(&kube, "HorizontalPodAutoscaler", "api", "maxReplicas"),
        json!(10)
    );
    assert!(ctx.store.throttled(None).await.unwrap().is_empty());
    let text = r.alert.expect("failures alert").to_string();
    assert!(
        text.contains("Failed on HorizontalPodAutoscaler ml/api"),
        "{text}"
    );

    // A scale that fails takes costcast's record back off the object.
    daily(&ctx, "2024-06-12").await;
    kube.fail("PATCH", "deployments/worker/scale", 500, 1);
    daily(&ctx, "2024-06-13").await;
    let worker = kube.get("Deployment", "ml", "worker");
    assert_eq!(worker["spec"]["replicas"], json!(4));
    assert_eq!(
        worker["metadata"]["annotations"].get("costcast.io/original"),
        None
    );

    // The next run retries and succeeds; an object deleted since is released.
    daily(&ctx, "2024-06-14").await;
    assert_eq!(
        spec(&kube, "HorizontalPodAutoscaler", "api", "maxReplicas"),
        json!(5)
    );
    assert_eq!(spec(&kube, "Deployment", "worker", "replicas"), json!(0));
}

fn with_slack(toml: String, url: &str) -> String {
    format!(
        "{toml}\n[notify.slack]\nwebhook_url = \"{url}\"\nreport_url = \"https://costcast.example.com/report\"\n"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn slack_hears_of_state_changes_and_escalations_not_of_every_run() {
    let (url, receiver) = common::slack_receiver::start(vec![]).await;
    let db = sqlite_db();
    let kube = cluster().await;
    let dir = std::env::temp_dir();
    let at = |amount| with_slack(budget_toml(amount, "enforce", &kube, ""), &url);
    let breach = context(config(&at(BREACH), &dir, &db)).await;
    let ok = context(config(&at(OK), &dir, &db)).await;
    store_forecast(&breach).await;
    let count = || receiver.bodies.lock().unwrap().len();

    daily(&breach, "2024-06-10").await; // breach, step 1
    assert_eq!(count(), 1);
    daily(&breach, "2024-06-10").await; // the same again: quiet
    assert_eq!(count(), 1);
    daily(&breach, "2024-06-11").await; // escalation to step 2
    assert_eq!(count(), 2);
    let escalation = receiver.bodies.lock().unwrap()[1].clone();
    let text = escalation.to_string();
    assert!(text.contains("Action ladder: step 2 of 4"), "{text}");
    assert!(
        text.contains("Changed HorizontalPodAutoscaler ml/api (spec.maxReplicas 10 → 5)"),
        "{text}"
    );
    assert!(text.contains("costcast act restore --budget ml"), "{text}");
    assert!(text.contains("P(overrun) 100%"), "{text}");
    assert!(text.contains("500.00 USD over"), "{text}");
    assert!(
        text.contains("<https://costcast.example.com/report|Open the report>"),
        "{text}"
    );
    daily(&ok, "2024-06-12").await; // recovering
    assert_eq!(count(), 3);
    daily(&ok, "2024-06-13").await; // ok: everything restored
    assert_eq!(count(), 4);
    let last = receiver.bodies.lock().unwrap()[3].to_string();
    assert!(last.contains("back to ok"), "{last}");
    assert!(
        last.contains("Restored HorizontalPodAutoscaler ml/api"),
        "{last}"
    );
    daily(&ok, "2024-06-14").await; // still ok: quiet
    assert_eq!(count(), 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slack_outage_does_not_stop_enforcement_and_the_alert_is_retried_next_run() {
    let (url, receiver) = common::slack_receiver::start(vec![]).await;
    let db = sqlite_db();
    let kube = cluster().await;
    let dir = std::env::temp_dir();
    let ctx = context(config(
        &with_slack(budget_toml(BREACH, "enforce", &kube, ""), &url),
        &dir,
        &db,
    ))
    .await;
    store_forecast(&ctx).await;
    daily(&ctx, "2024-06-10").await;
    // Every attempt of the next run fails.
    receiver.script.lock().unwrap().extend([500, 500, 500]);
    let err = run_once(
        &ctx,
        "daily",
        &[Step::Budgets, Step::Act, Step::Notify],
        noon("2024-06-11"),
        &RunOptions::default(),
    )
    .await
    .expect_err("the notify stage reports the outage");
    assert!(err.to_string().contains("notify failed"), "{err}");
    // The caps were lowered all the same.
    assert_eq!(
        spec(&kube, "HorizontalPodAutoscaler", "api", "maxReplicas"),
        json!(5)
    );
    let alerts = ctx.store.alerts().await.unwrap();
    assert!(
        alerts
            .last()
            .unwrap()
            .outcome
            .starts_with("failed: Slack answered 500 after 3 attempt(s)")
    );
    assert!(
        !alerts.last().unwrap().outcome.contains(&url),
        "the webhook is a secret"
    );
    // The next run has nothing new, but the undelivered alert goes out.
    let before = receiver.bodies.lock().unwrap().len();
    daily(&ctx, "2024-06-11").await;
    assert_eq!(receiver.bodies.lock().unwrap().len(), before + 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_costcast_act_processes_started_together_make_one_set_of_changes() {
    for db in both_dbs().await {
        let b = db.backend;
        let kube = cluster().await;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("costcast.toml");
        std::fs::write(&file, budget_toml(BREACH, "enforce", &kube, "")).unwrap();
        let setup = evaluated_to_step_3(&db, &kube).await;
        let spawn = || {
            tokio::process::Command::new(env!("CARGO_BIN_EXE_costcast"))
                .args([
                    "--config",
                    file.to_str().unwrap(),
                    "--as-of",
                    "2024-06-12",
                    "act",
                ])
                .env("COSTCAST_DATABASE_URL", &db.url)
                .env("RUST_LOG", "warn")
                .output()
        };
        let (one, two) = tokio::join!(spawn(), spawn());
        for out in [one.unwrap(), two.unwrap()] {
            assert!(
                out.status.success(),
                "{b}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert_eq!(kube.patches().len(), 5, "{b}: each object patched once");
        assert_eq!(setup.store.throttled(None).await.unwrap().len(), 5, "{b}");
        assert_eq!(
            spec(&kube, "HorizontalPodAutoscaler", "api", "maxReplicas"),
            json!(5),
            "{b}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_daily_digest_repeats_an_unchanged_breach_once_a_day() {
    let (url, receiver) = common::slack_receiver::start(vec![]).await;
    let db = sqlite_db();
    let kube = cluster().await;
    let dir = std::env::temp_dir();
    // A one-step ladder: after the first day nothing changes but the day.
    let toml = format!(
        "[kubernetes]\napi_url = \"{}\"\n[[budgets]]\nname = \"ml\"\namount = {BREACH}\n[[budgets.actions]]\nkind = \"alert\"\n[notify.slack]\nwebhook_url = \"{url}\"\ndaily_digest = true\n",
        kube.url
    );
    let ctx = context(config(&toml, &dir, &db)).await;
    store_forecast(&ctx).await;
    let count = || receiver.bodies.lock().unwrap().len();
    daily(&ctx, "2024-06-10").await;
    daily(&ctx, "2024-06-10").await;
    assert_eq!(count(), 1, "once a day");
    daily(&ctx, "2024-06-11").await;
    assert_eq!(count(), 2, "the next day's digest");
    assert!(
        kube.seen().is_empty(),
        "an alert-only ladder never calls the API"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_period_restores_the_last_ones_changes_and_starts_the_ladder_again() {
    for db in both_dbs().await {
        let b = db.backend;
        let kube = cluster().await;
        let ctx = breached(
            &db,
            &kube,
            "",
            &["2024-06-27", "2024-06-28", "2024-06-29", "2024-06-30"],
        )
        .await;
        assert_eq!(ctx.store.throttled(None).await.unwrap().len(), 8, "{b}");
        // July is forecast over budget too, but a new period starts from step 1 (alert).
        let r = daily(&ctx, "2024-07-01").await;
        assert_eq!(ladder(&r), (Status::Breach, 1), "{b}");
        assert_eq!(restored(&r), 8, "{b}: {:?}", r.actions);
        assert!(ctx.store.throttled(None).await.unwrap().is_empty(), "{b}");
        assert_eq!(
            spec(&kube, "Deployment", "worker", "replicas"),
            json!(4),
            "{b}"
        );
        assert_eq!(
            spec(&kube, "HorizontalPodAutoscaler", "api", "maxReplicas"),
            json!(10),
            "{b}"
        );
        // The next day climbs again.
        daily(&ctx, "2024-07-02").await;
        assert_eq!(
            spec(&kube, "HorizontalPodAutoscaler", "api", "maxReplicas"),
            json!(5),
            "{b}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_budget_removed_from_the_config_gives_its_objects_back() {
    let db = sqlite_db();
    let kube = cluster().await;
    breached(&db, &kube, "", &["2024-06-10", "2024-06-11"]).await;
    assert_eq!(
        spec(&kube, "HorizontalPodAutoscaler", "api", "maxReplicas"),
        json!(5)
    );
    let dir = std::env::temp_dir();
    let without = context(config(
        &format!("[kubernetes]\napi_url = \"{}\"\n", kube.url),
        &dir,
        &db,
    ))
    .await;
    act_once(&without, "2024-06-12").await.unwrap();
    assert_eq!(
        spec(&kube, "HorizontalPodAutoscaler", "api", "maxReplicas"),
        json!(10)
    );
    assert_eq!(
        spec(&kube, "ScaledObject", "queue", "maxReplicaCount"),
        json!(20)
    );
    assert!(without.store.throttled(None).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_api_server_is_a_failed_record_naming_the_namespace() {
    let db = sqlite_db();
    let kube = cluster().await;
    // Step 1 only alerts, so the first day needs no API.
    breached(&db, &kube, "", &["2024-06-10"]).await;
    let toml = budget_toml(BREACH, "enforce", &kube, "").replace(&kube.url, "http://127.0.0.1:9");
    let down = context(config(&toml, &std::env::temp_dir(), &db)).await;
    let r = daily(&down, "2024-06-11").await;
    let failed: Vec<_> = r
        .actions
        .iter()
        .filter(|a| a.outcome == Outcome::Failed)
        .collect();
    assert!(
        failed
            .iter()
            .any(|f| f.detail.starts_with("list horizontalpodautoscalers in ml:")),
        "{failed:?}"
    );
    assert!(down.store.throttled(None).await.unwrap().is_empty());
    assert!(kube.patches().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_enforced_budget_without_a_kubernetes_api_fails_the_run_and_says_how_to_give_it_one() {
    let db = sqlite_db();
    let kube = cluster().await;
    breached(&db, &kube, "", &["2024-06-10", "2024-06-11"]).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("costcast.toml");
    // The same budget, with no [kubernetes] table and no kubeconfig to fall back on.
    let toml = budget_toml(BREACH, "enforce", &kube, "")
        .replace(&format!("api_url = \"{}\"", kube.url), "");
    std::fs::write(&file, toml).unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_costcast"))
        .args([
            "--config",
            file.to_str().unwrap(),
            "--as-of",
            "2024-06-12",
            "act",
        ])
        .env("COSTCAST_DATABASE_URL", &db.url)
        .env("KUBECONFIG", dir.path().join("no-such-kubeconfig"))
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env("RUST_LOG", "off")
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("act failed: no Kubernetes API"), "{stderr}");
    assert!(stderr.contains("set kubernetes.api_url"), "{stderr}");
    // Nothing was restored or changed behind its back.
    assert_eq!(
        spec(&kube, "HorizontalPodAutoscaler", "api", "maxReplicas"),
        json!(5)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lost_store_takes_the_originals_back_from_the_objects_instead_of_recording_throttled_values()
 {
    let kube = cluster().await;
    breached(&sqlite_db(), &kube, "", &["2024-06-10", "2024-06-11"]).await;
    assert_eq!(
        spec(&kube, "HorizontalPodAutoscaler", "api", "maxReplicas"),
        json!(5)
    );
    let patches = kube.patches().len();

    // The database is lost; the breach goes on and step 2 is in effect again.
    let db = sqlite_db();
    let ctx = breached(&db, &kube, "", &["2024-06-10", "2024-06-11"]).await;
    assert_eq!(kube.patches().len(), patches, "nothing is changed twice");
    let held = ctx.store.throttled(None).await.unwrap();
    assert_eq!(held.len(), 2, "{held:?}");
    let api = held.iter().find(|c| c.target.name == "api").unwrap();
    assert_eq!(
        api.fields[0].original,
        json!(10),
        "the original, not costcast's 5"
    );

    // Recovery puts the real originals back.
    let ok = ctx_with(&db, OK, "enforce", &kube, "").await;
    daily(&ok, "2024-06-12").await;
    daily(&ok, "2024-06-13").await;
    assert_eq!(
        spec(&kube, "HorizontalPodAutoscaler", "api", "maxReplicas"),
        json!(10)
    );
    assert_eq!(
        spec(&kube, "ScaledObject", "queue", "maxReplicaCount"),
        json!(20)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreadable_record_on_an_object_is_named_and_the_object_left_alone() {
    let kube = cluster().await;
    kube.edit(
        "HorizontalPodAutoscaler",
        "ml",
        "api",
        json!({"metadata": {
            "labels": {"costcast.io/throttled": "true"},
            "annotations": {"costcast.io/original": "{not json"}
        }}),
    );
    let db = sqlite_db();
    let ctx = breached(&db, &kube, "", &["2024-06-10"]).await;
    let r = daily(&ctx, "2024-06-11").await;
    let skipped = r
        .actions
        .iter()
        .find(|a| a.change.target.name == "api")
        .expect("api is reported");
    assert_eq!(skipped.outcome, Outcome::Skipped);
    assert!(
        skipped
            .detail
            .contains("costcast.io/original annotation does not parse"),
        "{}",
        skipped.detail
    );
    assert_eq!(
        spec(&kube, "HorizontalPodAutoscaler", "api", "maxReplicas"),
        json!(10)
    );

    // Restore with the store lost names it too, and restores the rest.
    let fresh = sqlite_db();
    let lost = ctx_with(&fresh, BREACH, "enforce", &kube, "").await;
    let report = costcast::pipeline::restore(&lost, None, false, noon("2024-06-11"))
        .await
        .unwrap();
    let failed: Vec<_> = report
        .actions
        .iter()
        .filter(|a| a.outcome == Outcome::Failed)
        .collect();
    assert_eq!(failed.len(), 1, "{:?}", report.actions);
    assert_eq!(failed[0].change.target.name, "api");
    assert!(
        failed[0].detail.contains("restore it by hand"),
        "{}",
        failed[0].detail
    );
    assert_eq!(count(&report, Outcome::Done), 1, "the ScaledObject");
    assert_eq!(
        spec(&kube, "ScaledObject", "queue", "maxReplicaCount"),
        json!(20)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_change_whose_answer_was_lost_is_read_back_recorded_and_restored_on_both_stores() {
    for db in both_dbs().await {
        let b = db.backend;
        let kube = cluster().await;
        let ctx = breached(&db, &kube, "", &["2024-06-10", "2024-06-11", "2024-06-12"]).await;
        // The API server scales the worker to zero, but the proxy in front of it answers 502.
        // (A 504 the client retries by itself.)
        kube.lose_answer("PATCH", "deployments/worker/scale", 502, 1);
        let r = daily(&ctx, "2024-06-13").await;
        let worker = kube.get("Deployment", "ml", "worker");
        assert_eq!(worker["spec"]["replicas"], json!(0), "{b}");
        assert!(
            worker["metadata"]["annotations"]
                .get("costcast.io/original")
                .is_some(),
            "{b}: the record stays on the object"
        );
        let record = r
            .actions
            .iter()
            .find(|a| a.change.target.name == "worker")
            .expect("a record for the worker");
        assert_eq!(record.outcome, Outcome::Done, "{b}: {record:?}");
        assert!(record.detail.contains("answer was lost"), "{b}: {record:?}");
        let held = ctx.store.throttled(None).await.unwrap();
        assert!(held.iter().any(|c| c.target.name == "worker"), "{b}");

        let report = costcast::pipeline::restore(&ctx, None, false, noon("2024-06-13"))
            .await
            .expect("restore runs");
        assert_eq!(restored(&report), held.len(), "{b}: {:?}", report.actions);
        let worker = kube.get("Deployment", "ml", "worker");
        assert_eq!(worker["spec"]["replicas"], json!(4), "{b}");
        assert_eq!(
            worker["metadata"]["annotations"].get("costcast.io/original"),
            None,
            "{b}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_scale_whose_answer_was_lost_and_not_applied_takes_the_record_back_off() {
    let db = sqlite_db();
    let kube = cluster().await;
    let ctx = breached(&db, &kube, "", &["2024-06-10", "2024-06-11", "2024-06-12"]).await;
    // A proxy error before the API server saw it: read back, nothing changed.
    kube.fail("PATCH", "deployments/worker/scale", 502, 1);
    let r = daily(&ctx, "2024-06-13").await;
    let record = r
        .actions
        .iter()
        .find(|a| a.change.target.name == "worker")
        .expect("a record for the worker");
    assert_eq!(record.outcome, Outcome::Failed, "{record:?}");
    let worker = kube.get("Deployment", "ml", "worker");
    assert_eq!(worker["spec"]["replicas"], json!(4));
    assert_eq!(
        worker["metadata"]["annotations"].get("costcast.io/original"),
        None
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn objects_holding_costcasts_label_are_restored_automatically_whatever_the_store_says() {
    for db in both_dbs().await {
        let b = db.backend;
        let kube = cluster().await;
        let before = snapshot(&kube);
        breached(
            &db,
            &kube,
            "",
            &["2024-06-10", "2024-06-11", "2024-06-12", "2024-06-13"],
        )
        .await;
        assert_ne!(snapshot(&kube), before, "{b}: the ladder changed objects");

        // A store that never heard of those changes, and a budget no longer in breach: the
        // daily run finds the objects by costcast's label and puts every one back.
        let fresh = match b {
            "sqlite" => sqlite_db(),
            _ => postgres_db().await,
        };
        let lost = ctx_with(&fresh, OK, "enforce", &kube, "").await;
        store_forecast(&lost).await;
        assert!(lost.store.throttled(None).await.unwrap().is_empty(), "{b}");
        let r = daily(&lost, "2024-06-14").await;
        assert_eq!(ladder(&r), (Status::Ok, 0), "{b}");
        assert_eq!(restored(&r), 8, "{b}: {:?}", r.actions);
        for ((name, was), (_, now)) in before.iter().zip(snapshot(&kube).iter()) {
            if name == "CronJob/nightly" {
                assert_eq!(now["spec"]["suspend"], Value::Null, "{b}");
                continue;
            }
            assert_eq!(was["spec"], now["spec"], "{b} {name}");
            assert_eq!(
                now["annotations"].get("costcast.io/original"),
                None,
                "{b} {name}"
            );
        }
    }
}

/// Takes the leader lock from under its holder, as a second runner would once the first
/// stopped renewing it: SQLite's lock row is rewritten; PostgreSQL's holding session is ended
/// and the lock taken on a connection of `intruder`.
async fn steal_leader_lock(intruder: &App) -> Option<costcast::store::LeaderLock> {
    use costcast::pipeline::LEADER_LOCK;
    use costcast::store::Store;
    match &intruder.store {
        Store::Sqlite(pool) => {
            sqlx::query("UPDATE leader_lock SET holder = 'intruder', expires_at = '9999-12-31'")
                .execute(pool)
                .await
                .unwrap();
            None
        }
        Store::Postgres(pool) => {
            sqlx::query(
                "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory'",
            )
            .execute(pool)
            .await
            .unwrap();
            let ttl = std::time::Duration::from_secs(60);
            let wait = std::time::Duration::from_secs(5);
            intruder
                .store
                .acquire_leader(LEADER_LOCK, wait, ttl)
                .await
                .unwrap()
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_runner_that_loses_the_leader_lock_makes_no_further_change_and_the_next_run_finishes() {
    for db in both_dbs().await {
        let b = db.backend;
        let kube = cluster().await;
        let setup = evaluated_to_step_3(&db, &kube).await;
        // Renewed every half second; the first change hangs for 3 s in the API server.
        let ctx = ctx_with(&db, BREACH, "enforce", &kube, "lock_ttl_secs = 2").await;
        kube.delay("PATCH", "", std::time::Duration::from_secs(3), 1);
        let ctx = std::sync::Arc::new(ctx);
        let run = tokio::spawn({
            let ctx = ctx.clone();
            async move { act_once(&ctx, "2024-06-12").await }
        });
        while kube.patches().is_empty() {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let intruder = steal_leader_lock(&setup).await;
        let failed = run.await.unwrap().expect_err("the run fails");
        assert!(
            failed
                .to_string()
                .contains("leader lock was lost during act"),
            "{b}: {failed}"
        );
        assert_eq!(
            kube.patches().len(),
            1,
            "{b}: only the change in flight was made"
        );
        let log = ctx.store.actions(failed.run_id.unwrap()).await.unwrap();
        let n = |o: Outcome, why: &str| {
            log.iter()
                .filter(|a| a.outcome == o && a.detail.contains(why))
                .count()
        };
        // Step 2: HPA api, ScaledObject queue. Step 3: CronJobs nightly, hourly; Job.
        let lost = n(Outcome::Skipped, "lost the leader lock");
        assert_eq!((n(Outcome::Done, ""), lost), (1, 4), "{b}: {log:?}");
        assert_eq!(ctx.store.throttled(None).await.unwrap().len(), 1, "{b}");

        // The lock free again, the next run makes the four changes left.
        match intruder {
            Some(lock) => lock.release(&setup.store).await.unwrap(),
            None => {
                let costcast::store::Store::Sqlite(pool) = &setup.store else {
                    unreachable!()
                };
                sqlx::query("DELETE FROM leader_lock")
                    .execute(pool)
                    .await
                    .unwrap();
            }
        }
        let next = act_once(&ctx, "2024-06-12")
            .await
            .expect("the next run acts");
        assert_eq!(count(&next, Outcome::Done), 4, "{b}: {:?}", next.actions);
        assert_eq!(kube.patches().len(), 5, "{b}");
        assert_eq!(ctx.store.throttled(None).await.unwrap().len(), 5, "{b}");
    }
}
