//! The simulated GitHub App: installation tokens for a JWT signed with the App's key.

use axum::response::Response;
use serde_json::{Value, json};

use super::{Shared, gh_error, lock, ok};

/// `POST /app/installations/{id}/access_tokens` with the App's JWT as the bearer.
pub(super) fn installation_token(s: &Shared, path: &str, jwt: &str) -> Response {
    use octocrab::jsonwebtoken::{Algorithm, DecodingKey, Validation, decode};
    let mut st = lock(&s.state);
    let Some(app) = st.app.as_ref() else {
        return gh_error(401, "A JSON web token could not be decoded");
    };
    let id = path
        .trim_start_matches("/app/installations/")
        .trim_end_matches("/access_tokens");
    if id != app.installation_id.to_string() {
        return gh_error(404, "Not Found");
    }
    let Ok(key) = DecodingKey::from_rsa_pem(app.public_key_pem.as_bytes()) else {
        return gh_error(500, "the simulated App's public key is not RSA PEM");
    };
    let mut validation = Validation::new(Algorithm::RS256);
    // GitHub Apps put their id in `iss` as a number, which jsonwebtoken's own `iss` check (a
    // string) would call missing: it is checked below.
    validation.required_spec_claims = ["exp", "iat"].iter().map(|c| c.to_string()).collect();
    validation.validate_aud = false;
    let claims = match decode::<Value>(jwt, &key, &validation) {
        Ok(d) => d.claims,
        Err(e) => return gh_error(401, &format!("A JSON web token could not be decoded: {e}")),
    };
    let iss = claims["iss"]
        .as_str()
        .map(str::to_string)
        .or_else(|| claims["iss"].as_u64().map(|n| n.to_string()));
    if iss.as_deref() != Some(app.app_id.to_string().as_str()) {
        return gh_error(401, "'Issuer' claim ('iss') must be the App's id");
    }
    let token = format!("ghs_installation_{}", st.issued.len() + 1);
    st.issued.push(token.clone());
    let expires = chrono::Utc::now() + chrono::Duration::hours(1);
    ok(
        201,
        json!({"token": token, "expires_at": expires.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
               "permissions": {"contents": "write", "issues": "write", "pull_requests": "write"}}),
    )
}
