//! TLS set-up shared by the HTTP adapters.
//!
//! kube, reqwest and (later) octocrab and async-openai all use rustls; when more than one crypto
//! provider is compiled in, rustls cannot pick one and the first TLS client panics. squad builds
//! with `ring` and installs it as the process default before any client is made. Installing twice
//! (or after an embedding application installed its own) is fine: the first one stays.

/// Installs rustls' `ring` provider as the process default, unless one is installed already.
pub fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Err means another thread (or the embedding application) won the race: keep theirs.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}
