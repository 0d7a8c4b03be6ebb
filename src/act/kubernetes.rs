//! The Kubernetes executor: lists, reads and merge-patches the objects a ladder step targets,
//! through kube-rs with field manager `costcast`. Every kind goes through the dynamic API, so
//! one code path reads, records and restores them all; KEDA's ScaledObject needs it anyway, as
//! k8s-openapi has no type for a CRD.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams};
use kube::{Api, Client};
use serde_json::{Value, json};

use crate::domain::{ObjectKind, ObjectRef};

/// The field manager every change is made under.
pub const FIELD_MANAGER: &str = "costcast";

/// Why the API server could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// No client could be built from the environment.
    #[error("no Kubernetes API: {0}")]
    Config(String),
    /// The server answered with an error status.
    #[error("{target}: the API server answered {code} {reason}: {message}")]
    Api {
        /// What was asked for.
        target: String,
        /// HTTP status.
        code: u16,
        /// The reason, e.g. `Forbidden`, `Conflict`.
        reason: String,
        /// The server's message.
        message: String,
    },
    /// The request did not get an answer.
    #[error("{target}: {message}")]
    Transport {
        /// What was asked for.
        target: String,
        /// Why.
        message: String,
    },
}

impl KubeError {
    /// The HTTP status, when the server answered.
    pub fn code(&self) -> Option<u16> {
        match self {
            KubeError::Api { code, .. } => Some(*code),
            _ => None,
        }
    }

    fn from_kube(target: impl ToString, e: kube::Error) -> KubeError {
        match e {
            kube::Error::Api(s) => KubeError::Api {
                target: target.to_string(),
                code: s.code,
                reason: s.reason.clone(),
                message: s.message.clone(),
            },
            other => KubeError::Transport {
                target: target.to_string(),
                message: other.to_string(),
            },
        }
    }
}

/// An object as the planner sees it: identity, labels, annotations, owners and its body.
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    /// Which object.
    pub target: ObjectRef,
    /// `metadata.labels`.
    pub labels: BTreeMap<String, String>,
    /// `metadata.annotations`.
    pub annotations: BTreeMap<String, String>,
    /// `metadata.ownerReferences` as (kind, name).
    pub owners: Vec<(String, String)>,
    /// `metadata.resourceVersion`, sent back with patches so a concurrent edit is refused.
    pub resource_version: Option<String>,
    /// `metadata.creationTimestamp`.
    pub created: Option<DateTime<Utc>>,
    /// Everything but metadata: `spec`, `status`.
    pub data: Value,
}

impl Object {
    /// The value at a dotted path such as `spec.maxReplicas`; `null` when absent.
    pub fn field(&self, path: &str) -> Value {
        path.split('.')
            .try_fold(&self.data, |v, key| v.get(key))
            .cloned()
            .unwrap_or(Value::Null)
    }

    fn from_dynamic(kind: ObjectKind, namespace: &str, o: DynamicObject) -> Object {
        let m = o.metadata;
        Object {
            target: ObjectRef {
                kind,
                namespace: m.namespace.unwrap_or_else(|| namespace.to_string()),
                name: m.name.unwrap_or_default(),
            },
            labels: m.labels.unwrap_or_default(),
            annotations: m.annotations.unwrap_or_default(),
            owners: m
                .owner_references
                .unwrap_or_default()
                .into_iter()
                .map(|r| (r.kind, r.name))
                .collect(),
            resource_version: m.resource_version,
            created: m.creation_timestamp.and_then(|t| {
                DateTime::<Utc>::from_timestamp(t.0.as_second(), t.0.subsec_nanosecond() as u32)
            }),
            data: o.data,
        }
    }
}

/// Builds a merge patch that sets each dotted path to its value (`null` removes the field).
/// Paths are field names, never label or annotation keys (those contain dots).
pub fn merge_patch(fields: &[(&str, Value)]) -> Value {
    let mut patch = json!({});
    for (path, value) in fields {
        let mut at = &mut patch;
        let keys: Vec<&str> = path.split('.').collect();
        for key in &keys[..keys.len() - 1] {
            if !at[*key].is_object() {
                at[*key] = json!({});
            }
            at = &mut at[*key];
        }
        at[keys[keys.len() - 1]] = value.clone();
    }
    patch
}

/// A Kubernetes API connection.
#[derive(Clone)]
pub struct Cluster {
    client: Client,
}

impl Cluster {
    /// Connects to `api_url` without authentication (a `kubectl proxy`), or, without one, the
    /// way kubectl does: in-cluster service account first, then the kubeconfig.
    pub async fn connect(api_url: Option<&str>) -> Result<Cluster, KubeError> {
        let mut config = match api_url {
            Some(url) => {
                let uri = url
                    .parse()
                    .map_err(|e| KubeError::Config(format!("kubernetes.api_url {url:?}: {e}")))?;
                kube::Config::new(uri)
            }
            None => kube::Config::infer()
                .await
                .map_err(|e| KubeError::Config(e.to_string()))?,
        };
        // A run makes a few dozen small requests: a stuck API server should fail the request,
        // not hold the leader lock for kube's default of almost five minutes.
        config.connect_timeout = Some(Duration::from_secs(10));
        config.read_timeout = Some(Duration::from_secs(30));
        config.write_timeout = Some(Duration::from_secs(30));
        let client = Client::try_from(config).map_err(|e| KubeError::Config(e.to_string()))?;
        Ok(Cluster { client })
    }

    fn api(&self, kind: ObjectKind, namespace: &str) -> Api<DynamicObject> {
        let gvk = GroupVersionKind::gvk(kind.group(), kind.version(), kind.as_str());
        let resource = ApiResource::from_gvk_with_plural(&gvk, kind.plural());
        Api::namespaced_with(self.client.clone(), namespace, &resource)
    }

    fn params() -> PatchParams {
        PatchParams {
            field_manager: Some(FIELD_MANAGER.to_string()),
            ..PatchParams::default()
        }
    }

    /// The objects of `kind` in `namespace` that match `selector`.
    pub async fn list(
        &self,
        kind: ObjectKind,
        namespace: &str,
        selector: &str,
    ) -> Result<Vec<Object>, KubeError> {
        let params = ListParams::default().labels(selector);
        let list = self.api(kind, namespace).list(&params).await.map_err(|e| {
            KubeError::from_kube(format!("list {} in {namespace}", kind.plural()), e)
        })?;
        Ok(list
            .items
            .into_iter()
            .map(|o| Object::from_dynamic(kind, namespace, o))
            .collect())
    }

    /// One object, or `None` when it does not exist.
    pub async fn get(&self, target: &ObjectRef) -> Result<Option<Object>, KubeError> {
        self.api(target.kind, &target.namespace)
            .get_opt(&target.name)
            .await
            .map(|o| o.map(|o| Object::from_dynamic(target.kind, &target.namespace, o)))
            .map_err(|e| KubeError::from_kube(target, e))
    }

    /// Merge-patches the object itself.
    pub async fn patch(&self, target: &ObjectRef, patch: &Value) -> Result<(), KubeError> {
        self.api(target.kind, &target.namespace)
            .patch(&target.name, &Cluster::params(), &Patch::Merge(patch))
            .await
            .map(|_| ())
            .map_err(|e| KubeError::from_kube(target, e))
    }

    /// Merge-patches the object's `scale` subresource to `replicas`.
    pub async fn scale(&self, target: &ObjectRef, replicas: &Value) -> Result<(), KubeError> {
        let patch = json!({"spec": {"replicas": replicas}});
        self.api(target.kind, &target.namespace)
            .patch_scale(&target.name, &Cluster::params(), &Patch::Merge(&patch))
            .await
            .map(|_| ())
            .map_err(|e| KubeError::from_kube(format!("{target} scale"), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_merge_patch_nests_dotted_paths_and_keeps_nulls() {
        let p = merge_patch(&[
            ("spec.maxReplicas", json!(3)),
            ("spec.minReplicas", json!(1)),
            ("spec.jobTemplate.spec.suspend", Value::Null),
        ]);
        assert_eq!(
            p,
            json!({"spec": {
                "maxReplicas": 3,
                "minReplicas": 1,
                "jobTemplate": {"spec": {"suspend": null}}
            }})
        );
    }
}
