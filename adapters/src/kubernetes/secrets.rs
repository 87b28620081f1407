//! The namespace's Secrets: their key names for the diagnosis, their values for the redaction
//! gateway only; and its ConfigMaps' data, for Worf's search for credentials left in them.

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, ListParams};
use squad_runtime::ports::PortResult;

use super::KubeCluster;

impl KubeCluster {
    /// The namespace's Secrets, values included: for the two readers below only.
    async fn secrets(&self, namespace: &str) -> PortResult<Vec<Secret>> {
        let what = format!("Secrets in {namespace}");
        let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        let lp = ListParams::default();
        Ok(self.call(&what, || api.list(&lp)).await?.items)
    }

    /// Each Secret's name and key names; its values are dropped on receipt.
    pub(super) async fn secret_key_names(
        &self,
        namespace: &str,
    ) -> PortResult<Vec<(String, Vec<String>)>> {
        // Only names leave this function; the values are dropped with the list.
        Ok(self
            .secrets(namespace)
            .await?
            .iter()
            .map(|s| {
                let mut keys: Vec<String> = s
                    .data
                    .iter()
                    .flat_map(|d| d.keys().cloned())
                    .chain(s.string_data.iter().flat_map(|d| d.keys().cloned()))
                    .collect();
                keys.sort();
                keys.dedup();
                (s.metadata.name.clone().unwrap_or_default(), keys)
            })
            .collect())
    }

    /// Every Secret value in the namespace as text: what the redaction gateway must never let
    /// out.
    pub(super) async fn secret_texts(&self, namespace: &str) -> PortResult<Vec<String>> {
        // Decoded by k8s-openapi (ByteString); values that are not UTF-8 cannot appear in text.
        Ok(self
            .secrets(namespace)
            .await?
            .into_iter()
            .flat_map(|s| {
                let data = s
                    .data
                    .into_iter()
                    .flatten()
                    .filter_map(|(_, v)| String::from_utf8(v.0).ok());
                let string_data = s.string_data.into_iter().flatten().map(|(_, v)| v);
                data.chain(string_data).collect::<Vec<_>>()
            })
            .collect())
    }

    /// Every ConfigMap's text data as (name, key, value); `binaryData` is left out.
    pub(super) async fn config_map_data(
        &self,
        namespace: &str,
    ) -> PortResult<Vec<(String, String, String)>> {
        let what = format!("ConfigMaps in {namespace}");
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), namespace);
        let lp = ListParams::default();
        Ok(self
            .call(&what, || api.list(&lp))
            .await?
            .items
            .into_iter()
            .flat_map(|c| {
                let name = c.metadata.name.unwrap_or_default();
                c.data
                    .into_iter()
                    .flatten()
                    .map(move |(k, v)| (name.clone(), k, v))
            })
            .collect())
    }
}
