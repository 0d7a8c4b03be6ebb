//! An in-process Kubernetes API server: enough of it to test the executor against real HTTP.
//! It stores objects, serves GET and LIST with label selectors, applies JSON merge patches
//! (json-patch's RFC 7386 merge) to objects and to `scale` subresources, bumps
//! `resourceVersion` (refusing a stale one with 409), answers 404/409/403 when told to, and can
//! enforce the RBAC rules in deploy/kubernetes/rbac.yaml.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// GET or PATCH.
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The query string.
    pub query: String,
    /// The body, parsed.
    pub body: Value,
}

/// One rule of a role: (apiGroups, resources, verbs).
type Rule = (Vec<String>, Vec<String>, Vec<String>);

#[derive(Default)]
struct Inner {
    /// (group/version, plural, namespace, name) → object.
    objects: BTreeMap<(String, String, String, String), Value>,
    rv: u64,
    seen: Vec<Seen>,
    /// (method, path fragment, status, times left, whether the request is carried out first).
    faults: Vec<(String, String, u16, u32, bool)>,
    /// (method, path fragment, delay, times left): requests answered late.
    delays: Vec<(String, String, std::time::Duration, u32)>,
    /// (apiGroups, resources, verbs) of the role, when RBAC is enforced.
    rbac: Option<Vec<Rule>>,
}

/// A running fake API server.
#[derive(Clone)]
pub struct FakeKube {
    /// The base URL, e.g. `http://127.0.0.1:40123`.
    pub url: String,
    inner: Arc<Mutex<Inner>>,
}

const KINDS: [(&str, &str, &str); 6] = [
    ("Deployment", "apps/v1", "deployments"),
    ("StatefulSet", "apps/v1", "statefulsets"),
    (
        "HorizontalPodAutoscaler",
        "autoscaling/v2",
        "horizontalpodautoscalers",
    ),
    ("ScaledObject", "keda.sh/v1alpha1", "scaledobjects"),
    ("CronJob", "batch/v1", "cronjobs"),
    ("Job", "batch/v1", "jobs"),
];

fn kind_of(plural: &str) -> &'static str {
    KINDS
        .iter()
        .find(|k| k.2 == plural)
        .map_or("Unknown", |k| k.0)
}

fn plural_of(kind: &str) -> (&'static str, &'static str) {
    let k = KINDS
        .iter()
        .find(|k| k.0 == kind)
        .expect("a kind the fake knows");
    (k.1, k.2)
}

fn status(code: u16, reason: &str, message: &str) -> Response {
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code
    });
    (StatusCode::from_u16(code).unwrap(), axum::Json(body)).into_response()
}

/// Whether `labels` satisfy a selector of `k=v`, `k==v`, `k!=v`, `k` and `!k` terms.
pub fn selects(selector: &str, labels: &Value) -> bool {
    let get = |k: &str| labels.get(k).and_then(Value::as_str);
    selector
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .all(|term| {
            if let Some((k, v)) = term.split_once("!=") {
                get(k.trim()) != Some(v.trim())
            } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
                get(k.trim()) == Some(v.trim())
            } else if let Some(k) = term.strip_prefix('!') {
                get(k).is_none()
            } else {
                get(term).is_some()
            }
        })
}

async fn handle(
    State(k): State<FakeKube>,
    method: Method,
    uri: Uri,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let query = uri.query().unwrap_or("").to_string();
    let body_json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let delay = {
        let mut s = k.inner.lock().unwrap();
        s.seen.push(Seen {
            method: method.to_string(),
            path: path.clone(),
            query: query.clone(),
            body: body_json.clone(),
        });
        let due = s
            .delays
            .iter_mut()
            .find(|d| d.0 == method.as_str() && path.contains(&d.1) && d.3 > 0);
        due.map(|d| {
            d.3 -= 1;
            d.2
        })
    };
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    let mut s = k.inner.lock().unwrap();
    // /apis/{group}/{version}/namespaces/{ns}/{plural}[/{name}[/scale]]
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    if parts.len() < 6 || parts[0] != "apis" || parts[3] != "namespaces" {
        return status(404, "NotFound", &format!("the fake serves no {path}"));
    }
    let gv = format!("{}/{}", parts[1], parts[2]);
    let (ns, plural) = (parts[4].to_string(), parts[5].to_string());
    let name = parts.get(6).map(|n| n.to_string());
    let sub = parts.get(7).copied();

    let mut lost = None;
    for fault in s.faults.iter_mut() {
        if fault.0 == method.as_str() && path.contains(&fault.1) && fault.3 > 0 {
            fault.3 -= 1;
            let code = fault.2;
            let reason = match code {
                403 => "Forbidden",
                404 => "NotFound",
                409 => "Conflict",
                _ => "InternalError",
            };
            let answer = status(code, reason, &format!("injected {code} for {path}"));
            if !fault.4 {
                return answer;
            }
            lost = Some(answer);
            break;
        }
    }
    let response = serve(
        &mut s,
        Request {
            method: method.as_str(),
            path: &path,
            group: parts[1],
            gv: &gv,
            plural: &plural,
            ns: &ns,
            name,
            sub,
        },
        &params,
        &headers,
        &body_json,
    );
    // A lost answer: the request was carried out, then answered with the fault, so the caller
    // cannot tell what happened.
    lost.unwrap_or(response)
}

/// Where a request goes.
struct Request<'a> {
    method: &'a str,
    path: &'a str,
    group: &'a str,
    gv: &'a str,
    plural: &'a str,
    ns: &'a str,
    name: Option<String>,
    sub: Option<&'a str>,
}

/// Carries out a request the faults let through.
fn serve(
    s: &mut Inner,
    r: Request<'_>,
    params: &HashMap<String, String>,
    headers: &HeaderMap,
    body_json: &Value,
) -> Response {
    let Request {
        method,
        path,
        group,
        gv,
        plural,
        ns,
        name,
        sub,
    } = r;
    let (gv, plural, ns) = (gv.to_string(), plural.to_string(), ns.to_string());
    if let Some(rules) = &s.rbac {
        let verb = match (method, &name) {
            ("GET", None) => "list",
            ("GET", Some(_)) => "get",
            ("PATCH", _) => "patch",
            (m, _) => m,
        };
        let resource = match sub {
            Some(sub) => format!("{plural}/{sub}"),
            None => plural.clone(),
        };
        let allowed = rules.iter().any(|(groups, resources, verbs)| {
            groups.iter().any(|g| g == group)
                && resources.contains(&resource)
                && verbs.iter().any(|v| v == verb)
        });
        if !allowed {
            return status(
                403,
                "Forbidden",
                &format!("{verb} {resource} in group {group:?} is not in the role"),
            );
        }
    }

    let key = |n: &str| (gv.clone(), plural.clone(), ns.clone(), n.to_string());
    match (method, name, sub) {
        ("GET", None, None) => {
            let selector = params.get("labelSelector").cloned().unwrap_or_default();
            let items: Vec<Value> = s
                .objects
                .iter()
                .filter(|((g, p, n, _), _)| *g == gv && *p == plural && *n == ns)
                .map(|(_, o)| o.clone())
                .filter(|o| selects(&selector, &o["metadata"]["labels"]))
                .collect();
            let list = json!({
                "apiVersion": gv, "kind": format!("{}List", kind_of(&plural)),
                "metadata": {"resourceVersion": s.rv.to_string()}, "items": items
            });
            axum::Json(list).into_response()
        }
        ("GET", Some(name), sub) => match s.objects.get(&key(&name)) {
            None => status(404, "NotFound", &format!("{plural} {name:?} not found")),
            Some(o) if sub == Some("scale") => axum::Json(scale_of(o)).into_response(),
            Some(o) => axum::Json(o.clone()).into_response(),
        },
        ("PATCH", Some(name), sub) => {
            let ctype = headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if ctype != "application/merge-patch+json" {
                return status(
                    415,
                    "UnsupportedMediaType",
                    &format!("content type {ctype}"),
                );
            }
            s.rv += 1;
            let rv = s.rv.to_string();
            let Some(obj) = s.objects.get_mut(&key(&name)) else {
                return status(404, "NotFound", &format!("{plural} {name:?} not found"));
            };
            let current_rv = obj["metadata"]["resourceVersion"].clone();
            if let Some(want) = body_json["metadata"].get("resourceVersion")
                && *want != current_rv
            {
                return status(
                    409,
                    "Conflict",
                    "the object has been modified; please apply your changes to the latest version",
                );
            }
            if sub == Some("scale") {
                let mut scale = scale_of(obj);
                json_patch::merge(&mut scale, body_json);
                obj["spec"]["replicas"] = scale["spec"]["replicas"].clone();
                obj["metadata"]["resourceVersion"] = json!(rv);
                axum::Json(scale_of(obj)).into_response()
            } else {
                json_patch::merge(obj, body_json);
                obj["metadata"]["resourceVersion"] = json!(rv);
                axum::Json(obj.clone()).into_response()
            }
        }
        _ => status(405, "MethodNotAllowed", &format!("{method} {path}")),
    }
}

fn scale_of(o: &Value) -> Value {
    json!({
        "apiVersion": "autoscaling/v1", "kind": "Scale",
        "metadata": {
            "name": o["metadata"]["name"], "namespace": o["metadata"]["namespace"],
            "resourceVersion": o["metadata"]["resourceVersion"]
        },
        "spec": {"replicas": o["spec"]["replicas"]},
        "status": {"replicas": o["spec"]["replicas"]}
    })
}

impl FakeKube {
    /// Starts a server on a free port.
    pub async fn start() -> FakeKube {
        let inner: Arc<Mutex<Inner>> = Arc::default();
        // The handler uses only the shared objects; the URL is known once the port is bound.
        let app = Router::new().fallback(handle).with_state(FakeKube {
            url: String::new(),
            inner: inner.clone(),
        });
        FakeKube {
            url: super::serve_locally(app).await,
            inner,
        }
    }

    /// Stores an object (its `kind` picks the resource); its resourceVersion is set.
    pub fn put(&self, mut obj: Value) {
        let mut s = self.inner.lock().unwrap();
        s.rv += 1;
        let (gv, plural) = plural_of(obj["kind"].as_str().unwrap());
        obj["apiVersion"] = json!(gv);
        obj["metadata"]["resourceVersion"] = json!(s.rv.to_string());
        if obj["metadata"].get("creationTimestamp").is_none() {
            obj["metadata"]["creationTimestamp"] = json!("2024-06-01T00:00:00Z");
        }
        let key = (
            gv.to_string(),
            plural.to_string(),
            obj["metadata"]["namespace"].as_str().unwrap().to_string(),
            obj["metadata"]["name"].as_str().unwrap().to_string(),
        );
        s.objects.insert(key, obj);
    }

    /// An object as stored now.
    pub fn get(&self, kind: &str, ns: &str, name: &str) -> Value {
        let (gv, plural) = plural_of(kind);
        let s = self.inner.lock().unwrap();
        s.objects
            .get(&(gv.into(), plural.into(), ns.into(), name.into()))
            .cloned()
            .unwrap_or(Value::Null)
    }

    /// Changes an object the way a person with kubectl would: merge `patch`, bump the version.
    pub fn edit(&self, kind: &str, ns: &str, name: &str, patch: Value) {
        let (gv, plural) = plural_of(kind);
        let mut s = self.inner.lock().unwrap();
        s.rv += 1;
        let rv = s.rv.to_string();
        let obj = s
            .objects
            .get_mut(&(gv.into(), plural.into(), ns.into(), name.into()))
            .expect("the object exists");
        json_patch::merge(obj, &patch);
        obj["metadata"]["resourceVersion"] = json!(rv);
    }

    /// Answers the next `times` requests of `method` whose path contains `fragment` with
    /// `code`.
    pub fn fail(&self, method: &str, fragment: &str, code: u16, times: u32) {
        let mut s = self.inner.lock().unwrap();
        s.faults
            .push((method.into(), fragment.into(), code, times, false));
    }

    /// Carries out the next `times` requests of `method` whose path contains `fragment`, then
    /// answers them with `code`, as a gateway that timed out after the API server applied them.
    pub fn lose_answer(&self, method: &str, fragment: &str, code: u16, times: u32) {
        let mut s = self.inner.lock().unwrap();
        s.faults
            .push((method.into(), fragment.into(), code, times, true));
    }

    /// Holds the next `times` requests of `method` whose path contains `fragment` for
    /// `delay` before carrying them out; they are in [`FakeKube::seen`] from their arrival.
    pub fn delay(&self, method: &str, fragment: &str, delay: std::time::Duration, times: u32) {
        let mut s = self.inner.lock().unwrap();
        s.delays
            .push((method.into(), fragment.into(), delay, times));
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.inner.lock().unwrap().seen.clone()
    }

    /// The PATCH requests so far.
    pub fn patches(&self) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|r| r.method == "PATCH")
            .collect()
    }

    /// From now on, refuses (403) every request outside the rules of the ClusterRole in
    /// `rbac_yaml`, the way the API server does for costcast's service account.
    pub fn enforce_rbac(&self, rbac_yaml: &str) {
        let docs: Vec<Value> = serde_saphyr::from_multiple(rbac_yaml).expect("RBAC YAML parses");
        let strings = |v: &Value| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default()
        };
        let rules: Vec<_> = docs
            .iter()
            .filter(|d| matches!(d["kind"].as_str(), Some("ClusterRole" | "Role")))
            .flat_map(|d| d["rules"].as_array().cloned().unwrap_or_default())
            .map(|r| {
                (
                    strings(&r["apiGroups"]),
                    strings(&r["resources"]),
                    strings(&r["verbs"]),
                )
            })
            .collect();
        assert!(!rules.is_empty(), "the RBAC file has a role with rules");
        self.inner.lock().unwrap().rbac = Some(rules);
    }
}
