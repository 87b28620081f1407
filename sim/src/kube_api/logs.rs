//! `pods/{name}/log`: a container's log as `text/plain`, with the `container`, `previous`,
//! `tailLines` and `limitBytes` parameters and the errors kubectl shows when they do not fit the
//! pod.

use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{Shared, param, status};
use crate::cluster::World;
use squad_gitops::objects;

pub(super) fn pod_log(
    shared: &Shared,
    world: &World,
    ns: &str,
    pod: &str,
    q: &[(String, String)],
) -> Response {
    let Some(p) = world
        .of_kind("Pod", Some(ns))
        .find(|o| objects::name(o) == pod)
    else {
        return status(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("pods \"{pod}\" not found"),
            Some(json!({"name": pod, "kind": "pods"})),
        );
    };
    let names = |key: &str| -> Vec<String> {
        p["spec"][key]
            .as_array()
            .map(|cs| {
                cs.iter()
                    .filter_map(|c| c["name"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let (containers, inits) = (names("containers"), names("initContainers"));
    let container = match param(q, "container").filter(|c| !c.is_empty()) {
        Some(c) => c.to_owned(),
        None if containers.len() == 1 => containers[0].clone(),
        None => {
            return status(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                &format!(
                    "a container name must be specified for pod {pod}, choose one of: [{}]{}",
                    containers.join(" "),
                    if inits.is_empty() {
                        String::new()
                    } else {
                        format!(" or one of the init containers: [{}]", inits.join(" "))
                    }
                ),
                None,
            );
        }
    };
    if !containers.contains(&container) && !inits.contains(&container) {
        return status(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            &format!("container {container} is not valid for pod {pod}"),
            None,
        );
    }
    let previous = param(q, "previous") == Some("true");
    let tail = match param(q, "tailLines") {
        Some(t) => match t.parse::<usize>() {
            Ok(n) => n,
            Err(_) => {
                return status(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    &format!("tailLines: expected a non-negative integer, got {t:?}"),
                    None,
                );
            }
        },
        None => usize::MAX,
    };
    // As the kubelet: the first `limitBytes` bytes of what the other parameters select.
    let limit = match param(q, "limitBytes") {
        Some(l) => match l.parse::<usize>() {
            Ok(n) if n > 0 => n,
            _ => {
                return status(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Invalid",
                    &format!("limitBytes: expected a positive integer, got {l:?}"),
                    None,
                );
            }
        },
        None => usize::MAX,
    };
    match shared.cluster.logs(ns, pod, &container, previous, tail) {
        Ok(lines) => {
            let mut text = lines.join("\n");
            if !text.is_empty() {
                text.push('\n');
            }
            let mut text = text.into_bytes();
            text.truncate(limit);
            Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, "text/plain")
                .body(Body::from(text))
                .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
        }
        Err(squad_runtime::ports::PortError::NotFound { .. }) if previous => status(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            &format!("previous terminated container \"{container}\" in pod \"{pod}\" not found"),
            None,
        ),
        // A container that never started (its image cannot be pulled): the API server's 400.
        Err(squad_runtime::ports::PortError::Rejected { detail, .. }) => {
            status(StatusCode::BAD_REQUEST, "BadRequest", &detail, None)
        }
        Err(e) => status(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            &e.to_string(),
            None,
        ),
    }
}
