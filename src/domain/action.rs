//! What acting on a budget changes: Kubernetes objects, the fields changed on them with their
//! original values, and what became of each change.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A kind of Kubernetes object costcast may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ObjectKind {
    /// `apps/v1` Deployment, scaled through its `scale` subresource.
    Deployment,
    /// `apps/v1` StatefulSet, scaled through its `scale` subresource.
    StatefulSet,
    /// `autoscaling/v2` HorizontalPodAutoscaler.
    HorizontalPodAutoscaler,
    /// `keda.sh/v1alpha1` ScaledObject.
    ScaledObject,
    /// `batch/v1` CronJob.
    CronJob,
    /// `batch/v1` Job.
    Job,
}

impl ObjectKind {
    /// Every kind, in the order restore lists them.
    pub const ALL: [ObjectKind; 6] = [
        ObjectKind::Deployment,
        ObjectKind::StatefulSet,
        ObjectKind::HorizontalPodAutoscaler,
        ObjectKind::ScaledObject,
        ObjectKind::CronJob,
        ObjectKind::Job,
    ];

    /// The API group (`apps`, `autoscaling`, ...).
    pub fn group(self) -> &'static str {
        match self {
            ObjectKind::Deployment | ObjectKind::StatefulSet => "apps",
            ObjectKind::HorizontalPodAutoscaler => "autoscaling",
            ObjectKind::ScaledObject => "keda.sh",
            ObjectKind::CronJob | ObjectKind::Job => "batch",
        }
    }

    /// The API version within the group.
    pub fn version(self) -> &'static str {
        match self {
            ObjectKind::HorizontalPodAutoscaler => "v2",
            ObjectKind::ScaledObject => "v1alpha1",
            _ => "v1",
        }
    }

    /// The resource name in URLs and RBAC rules.
    pub fn plural(self) -> &'static str {
        match self {
            ObjectKind::Deployment => "deployments",
            ObjectKind::StatefulSet => "statefulsets",
            ObjectKind::HorizontalPodAutoscaler => "horizontalpodautoscalers",
            ObjectKind::ScaledObject => "scaledobjects",
            ObjectKind::CronJob => "cronjobs",
            ObjectKind::Job => "jobs",
        }
    }

    /// The `kind` field's value.
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectKind::Deployment => "Deployment",
            ObjectKind::StatefulSet => "StatefulSet",
            ObjectKind::HorizontalPodAutoscaler => "HorizontalPodAutoscaler",
            ObjectKind::ScaledObject => "ScaledObject",
            ObjectKind::CronJob => "CronJob",
            ObjectKind::Job => "Job",
        }
    }

    /// Parses a `kind` value.
    pub fn parse(s: &str) -> Option<ObjectKind> {
        ObjectKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Whether replica counts change through the `scale` subresource.
    pub fn scales(self) -> bool {
        matches!(self, ObjectKind::Deployment | ObjectKind::StatefulSet)
    }
}

/// One object in one namespace.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ObjectRef {
    /// Its kind.
    pub kind: ObjectKind,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}/{}", self.kind.as_str(), self.namespace, self.name)
    }
}

/// One field costcast set: what it was and what costcast made it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    /// The dotted path, e.g. `spec.maxReplicas`.
    pub field: String,
    /// The value before costcast changed it (`null` when it was unset).
    pub original: Value,
    /// The value costcast set.
    pub set: Value,
}

/// Everything one budget changed on one object: the record restore works from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObjectChange {
    /// The budget that made the change.
    pub budget: String,
    /// The highest ladder step that changed the object.
    pub step: u32,
    /// The object.
    pub target: ObjectRef,
    /// The fields changed.
    pub fields: Vec<FieldChange>,
}

impl ObjectChange {
    /// The fields as `field: original → set`, for people.
    pub fn describe_fields(&self) -> String {
        self.fields
            .iter()
            .map(|f| format!("{} {} → {}", f.field, f.original, f.set))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Whether a record is about applying a step or undoing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Operation {
    /// Throttling an object.
    Apply,
    /// Putting an object back.
    Restore,
}

impl Operation {
    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Apply => "apply",
            Operation::Restore => "restore",
        }
    }
}

/// What became of one change to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// The change was made.
    Done,
    /// The change was only planned: observe mode or `--dry-run`.
    Planned,
    /// The object was left alone on purpose (protected, critical, change limit, held by
    /// another budget); the detail says why.
    Skipped,
    /// Someone changed the object since costcast did; it was not overwritten.
    Conflict,
    /// The API server refused or could not be reached; the detail says what it answered.
    Failed,
}

impl Outcome {
    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Done => "done",
            Outcome::Planned => "planned",
            Outcome::Skipped => "skipped",
            Outcome::Conflict => "conflict",
            Outcome::Failed => "failed",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Outcome> {
        [
            Outcome::Done,
            Outcome::Planned,
            Outcome::Skipped,
            Outcome::Conflict,
            Outcome::Failed,
        ]
        .into_iter()
        .find(|o| o.as_str() == s)
    }
}

/// One line of the action log: an operation on one object and its outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionRecord {
    /// Apply or restore.
    pub operation: Operation,
    /// The change, with the fields it sets or puts back.
    pub change: ObjectChange,
    /// What became of it.
    pub outcome: Outcome,
    /// Why, for skipped, conflicting and failed changes; empty otherwise.
    pub detail: String,
}

impl ActionRecord {
    /// A sentence for people: `Suspended CronJob ml/nightly (spec.suspend false → true)`.
    pub fn describe(&self) -> String {
        let verb = match (self.operation, self.outcome) {
            (Operation::Apply, Outcome::Done) => "Changed",
            (Operation::Apply, Outcome::Planned) => "Would change",
            (Operation::Restore, Outcome::Done) => "Restored",
            (Operation::Restore, Outcome::Planned) => "Would restore",
            (_, Outcome::Skipped) => "Left alone",
            (_, Outcome::Conflict) => "Conflict, left alone",
            (_, Outcome::Failed) => "Failed on",
        };
        let mut s = format!("{verb} {}", self.change.target);
        if !self.change.fields.is_empty() {
            s.push_str(&format!(" ({})", self.change.describe_fields()));
        }
        if !self.detail.is_empty() {
            s.push_str(&format!(": {}", self.detail));
        }
        s
    }
}
