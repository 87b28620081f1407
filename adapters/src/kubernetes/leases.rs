//! The replicas' leases as `coordination.k8s.io/v1` Lease objects in squad's own namespace:
//! `<prefix>-intake`, `<prefix>-shard-<n>` and `<prefix>-member-<replica>`, labelled
//! `app.kubernetes.io/managed-by=squad` and `squad.dev/leases=<prefix>`.
//!
//! Every write is conditional on the `resourceVersion` read just before (a replace, or a create
//! that fails if the object exists), so of two replicas racing for a lease one wins and the
//! other is told 409 Conflict: that claim returns none. Acquiring a lease increments its
//! `leaseTransitions` (the fencing epoch); expiry is judged from `renewTime` and
//! `leaseDurationSeconds` as Kubernetes' own leader election does.

use std::collections::BTreeMap;
use std::time::Duration;

use ::kube::Client;
use ::kube::api::{Api, DeleteParams, ListParams, ObjectMeta, PostParams};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use squad_runtime::ports::{PortError, PortResult};
use squad_runtime::shards::{LeaseRecord, Leases};

const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
const GROUP_LABEL: &str = "squad.dev/leases";

pub struct KubeLeases {
    api: Api<Lease>,
    prefix: String,
    namespace: String,
    server: String,
}

fn micro(t: DateTime<Utc>) -> Option<MicroTime> {
    Timestamp::from_microsecond(t.timestamp_micros())
        .ok()
        .map(MicroTime)
}

fn chrono_of(t: &MicroTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_micros(t.0.as_microsecond())
}

impl KubeLeases {
    pub fn new(client: Client, namespace: &str, prefix: &str, server: String) -> KubeLeases {
        KubeLeases {
            api: Api::namespaced(client, namespace),
            prefix: prefix.to_owned(),
            namespace: namespace.to_owned(),
            server,
        }
    }

    /// The object's name for lease `name` (`shard-3` → `squad-shard-3`), a valid DNS label.
    fn object(&self, name: &str) -> String {
        let raw = format!("{}-{name}", self.prefix).to_ascii_lowercase();
        let clean: String = raw
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        clean.trim_matches('-').chars().take(63).collect()
    }

    fn error(&self, what: &str, e: ::kube::Error) -> PortError {
        let what = format!("{what} (Lease in namespace {})", self.namespace);
        match e {
            ::kube::Error::Api(s) => match s.code {
                404 => PortError::NotFound { what },
                401 | 403 => PortError::Forbidden {
                    what,
                    detail: format!(
                        "{}; squad's ServiceAccount needs get, list, create, update and delete on leases.coordination.k8s.io in its namespace",
                        s.message
                    ),
                },
                400 | 409 | 422 => PortError::Rejected {
                    what,
                    detail: format!("{} ({}): {}", s.reason, s.code, s.message),
                },
                code => PortError::Unavailable {
                    what,
                    detail: format!("{} ({code}): {}", s.reason, s.message),
                },
            },
            other => PortError::Unavailable {
                what,
                detail: format!("cannot reach the API server at {}: {other}", self.server),
            },
        }
    }

    fn record(&self, lease: &Lease) -> Option<LeaseRecord> {
        let object = lease.metadata.name.as_deref()?;
        let name = object.strip_prefix(&format!("{}-", self.prefix))?;
        let spec = lease.spec.clone().unwrap_or_default();
        Some(LeaseRecord {
            name: name.to_owned(),
            holder: spec.holder_identity.filter(|h| !h.is_empty()),
            renewed: spec.renew_time.as_ref().and_then(chrono_of),
            duration: Duration::from_secs(
                u64::try_from(spec.lease_duration_seconds.unwrap_or(0)).unwrap_or(0),
            ),
            transitions: u64::try_from(spec.lease_transitions.unwrap_or(0)).unwrap_or(0),
        })
    }

    fn labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (MANAGED_BY.to_owned(), "squad".to_owned()),
            (GROUP_LABEL.to_owned(), self.prefix.clone()),
        ])
    }
}

#[async_trait]
impl Leases for KubeLeases {
    async fn list(&self) -> PortResult<Vec<LeaseRecord>> {
        let selector = format!("{MANAGED_BY}=squad,{GROUP_LABEL}={}", self.prefix);
        let list = self
            .api
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| self.error("list leases", e))?;
        Ok(list.items.iter().filter_map(|l| self.record(l)).collect())
    }

    async fn claim(
        &self,
        name: &str,
        holder: &str,
        duration: Duration,
        now: DateTime<Utc>,
    ) -> PortResult<Option<u64>> {
        let object = self.object(name);
        let seconds = i32::try_from(duration.as_secs()).unwrap_or(i32::MAX).max(1);
        let what = format!("claim lease {object}");
        let current = self
            .api
            .get_opt(&object)
            .await
            .map_err(|e| self.error(&what, e))?;
        let Some(mut lease) = current else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(object.clone()),
                    labels: Some(self.labels()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(holder.to_owned()),
                    lease_duration_seconds: Some(seconds),
                    acquire_time: micro(now),
                    renew_time: micro(now),
                    lease_transitions: Some(1),
                    ..LeaseSpec::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(Some(1)),
                // Another replica created it first.
                Err(::kube::Error::Api(s)) if s.code == 409 => Ok(None),
                Err(e) => Err(self.error(&what, e)),
            };
        };
        let record = self.record(&lease).unwrap_or(LeaseRecord {
            name: name.to_owned(),
            holder: None,
            renewed: None,
            duration,
            transitions: 0,
        });
        let mine = record.holder.as_deref() == Some(holder);
        if !mine && record.holder.is_some() && !record.expired(now) {
            return Ok(None);
        }
        let transitions = if mine {
            record.transitions
        } else {
            record.transitions + 1
        };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        spec.holder_identity = Some(holder.to_owned());
        spec.lease_duration_seconds = Some(seconds);
        spec.renew_time = micro(now);
        if !mine {
            spec.acquire_time = micro(now);
            spec.lease_transitions = Some(i32::try_from(transitions).unwrap_or(i32::MAX));
        }
        // resourceVersion stays as read: the replace fails with 409 if anyone wrote since.
        match self
            .api
            .replace(&object, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(Some(transitions)),
            Err(::kube::Error::Api(s)) if s.code == 409 => Ok(None),
            Err(e) => Err(self.error(&what, e)),
        }
    }

    async fn release(&self, name: &str, holder: &str) -> PortResult<()> {
        let object = self.object(name);
        let what = format!("release lease {object}");
        let Some(mut lease) = self
            .api
            .get_opt(&object)
            .await
            .map_err(|e| self.error(&what, e))?
        else {
            return Ok(());
        };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        if spec.holder_identity.as_deref() != Some(holder) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.renew_time = None;
        match self
            .api
            .replace(&object, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(()),
            // Someone wrote it since: it is no longer this holder's to release.
            Err(::kube::Error::Api(s)) if s.code == 409 => Ok(()),
            Err(e) => Err(self.error(&what, e)),
        }
    }

    async fn forget(&self, name: &str) -> PortResult<()> {
        let object = self.object(name);
        match self.api.delete(&object, &DeleteParams::default()).await {
            Ok(_) => Ok(()),
            Err(::kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => Err(self.error(&format!("delete lease {object}"), e)),
        }
    }
}
