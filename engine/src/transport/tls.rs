//! rustls client configuration.
//!
//! One crypto provider (aws-lc-rs) is named explicitly, so a second provider elsewhere in the graph
//! can never make `ClientConfig::builder()` panic at run time (STACK-NOTES gotcha 1). Production trusts
//! the webpki root store; tests and demos trust the mock exchange's CA from its `ca.pem`.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};

use super::TransportError;

/// A client config trusting `ca_file` (PEM, one or more certificates) or, without it, the public
/// webpki roots.
pub fn client_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, TransportError> {
    let mut roots = RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let ca_err = |why: String| TransportError::CaFile {
                path: path.display().to_string(),
                why,
            };
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .map_err(|e| ca_err(e.to_string()))?
                .collect::<Result<_, _>>()
                .map_err(|e| ca_err(e.to_string()))?;
            if certs.is_empty() {
                return Err(ca_err("no PEM certificate in the file".into()));
            }
            for c in certs {
                roots.add(c).map_err(|e| ca_err(e.to_string()))?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let cfg = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TransportError::Tls {
            host: "-".into(),
            why: e.to_string(),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}
