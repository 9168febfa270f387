//! Certificates for the mock exchange: a throw-away CA and a server certificate it signs for
//! `localhost` and `127.0.0.1`. Clients trust the CA through `DIR/ca.pem` (`--ca-file`), exactly as
//! they would trust a real exchange's chain through the webpki roots.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::ServerConfig;

use super::MockError;

/// A CA and a server certificate signed by it.
pub struct MockCerts {
    pub ca_pem: String,
    pub server_config: Arc<ServerConfig>,
}

impl MockCerts {
    /// Generates fresh keys (each mock run has its own CA).
    pub fn generate() -> Result<Self, MockError> {
        let e = |e: rcgen::Error| MockError::Certs(e.to_string());
        let ca_key = KeyPair::generate().map_err(e)?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(e)?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "Quantum Alpha mock exchange CA");
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca_params.self_signed(&ca_key).map_err(e)?;
        let ca_pem = ca_cert.pem();
        let issuer = Issuer::new(ca_params, ca_key);

        let srv_key = KeyPair::generate().map_err(e)?;
        let mut srv_params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
                .map_err(e)?;
        srv_params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        let srv_cert = srv_params.signed_by(&srv_key, &issuer).map_err(e)?;

        let chain: Vec<CertificateDer<'static>> =
            vec![srv_cert.der().clone(), ca_cert.der().clone()];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(srv_key.serialize_der()));
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let server_config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| MockError::Certs(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| MockError::Certs(e.to_string()))?;
        Ok(Self {
            ca_pem,
            server_config: Arc::new(server_config),
        })
    }

    /// Writes `dir/ca.pem` and returns its path.
    pub fn write_ca(&self, dir: &Path) -> Result<PathBuf, MockError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| MockError::Io(format!("create {}: {e}", dir.display())))?;
        let path = dir.join("ca.pem");
        std::fs::write(&path, &self.ca_pem)
            .map_err(|e| MockError::Io(format!("write {}: {e}", path.display())))?;
        Ok(path)
    }
}
