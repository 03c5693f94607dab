//! TLS to Redis (`rediss://`): which certificates a node trusts and shows.
//!
//! fred speaks TLS through rustls (ring). A `rediss://` URL alone trusts the system roots,
//! as fred does by default; `REDIS_TLS_CA_FILE` replaces them with a private CA (the usual
//! case for a Redis in the same cluster), and a client certificate and key answer a
//! server that requires mutual TLS. The files are read once, at start: a missing or
//! unreadable file stops the node with the variable's name, before it connects.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use fred::rustls::pki_types::pem::PemObject;
use fred::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use fred::rustls::{ClientConfig, RootCertStore};
use fred::types::config::{Config as FredConfig, TlsConnector};

/// The TLS files of a node's Redis connections; all unset means system roots, no client
/// certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedisTls {
    /// `REDIS_TLS_CA_FILE`: PEM certificates trusted instead of the system roots.
    pub ca_file: Option<PathBuf>,
    /// `REDIS_TLS_CLIENT_CERT_FILE`: PEM certificate chain shown to the server.
    pub client_cert_file: Option<PathBuf>,
    /// `REDIS_TLS_CLIENT_KEY_FILE`: its PEM private key.
    pub client_key_file: Option<PathBuf>,
}

impl RedisTls {
    fn any_set(&self) -> bool {
        self.ca_file.is_some() || self.client_cert_file.is_some() || self.client_key_file.is_some()
    }

    /// Puts these settings on a config parsed from the URL. A TLS file with a plain
    /// `redis://` URL is refused: the operator meant TLS and would not get it.
    pub fn apply(&self, config: &mut FredConfig) -> anyhow::Result<()> {
        if config.tls.is_none() {
            anyhow::ensure!(
                !self.any_set(),
                "REDIS_TLS_CA_FILE / REDIS_TLS_CLIENT_CERT_FILE / REDIS_TLS_CLIENT_KEY_FILE are set, but REDIS_URL is not a TLS URL; use rediss:// (or rediss-cluster://)"
            );
            return Ok(());
        }
        if !self.any_set() {
            // fred's default for rediss://: the system roots, no client certificate.
            return Ok(());
        }
        config.tls = Some(TlsConnector::from(self.client_config()?).into());
        Ok(())
    }

    fn client_config(&self) -> anyhow::Result<ClientConfig> {
        let provider = Arc::new(fred::rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("rustls has no safe protocol versions")?
            .with_root_certificates(self.roots()?);
        match (&self.client_cert_file, &self.client_key_file) {
            (None, None) => Ok(builder.with_no_client_auth()),
            (Some(cert), Some(key)) => {
                let chain = certificates(cert, "REDIS_TLS_CLIENT_CERT_FILE")?;
                let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
                    anyhow::anyhow!(
                        "REDIS_TLS_CLIENT_KEY_FILE {}: no usable PEM private key: {e}",
                        key.display()
                    )
                })?;
                builder.with_client_auth_cert(chain, key).context(
                    "REDIS_TLS_CLIENT_CERT_FILE and REDIS_TLS_CLIENT_KEY_FILE do not make a usable client certificate",
                )
            }
            _ => anyhow::bail!(
                "mutual TLS to Redis needs both REDIS_TLS_CLIENT_CERT_FILE and REDIS_TLS_CLIENT_KEY_FILE"
            ),
        }
    }

    fn roots(&self) -> anyhow::Result<RootCertStore> {
        let mut roots = RootCertStore::empty();
        match &self.ca_file {
            Some(path) => {
                for cert in certificates(path, "REDIS_TLS_CA_FILE")? {
                    roots.add(cert).with_context(|| {
                        format!(
                            "REDIS_TLS_CA_FILE {}: not a usable CA certificate",
                            path.display()
                        )
                    })?;
                }
            }
            None => {
                let found = fred::rustls_native_certs::load_native_certs();
                let (added, _ignored) = roots.add_parsable_certificates(found.certs);
                anyhow::ensure!(
                    added > 0,
                    "no system CA certificates found for rediss://; set REDIS_TLS_CA_FILE"
                );
            }
        }
        Ok(roots)
    }
}

/// Every PEM certificate in a file; none is an error naming the variable.
fn certificates(path: &Path, var: &str) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            anyhow::anyhow!(
                "{var} {}: cannot read PEM certificates: {e}",
                path.display()
            )
        })?;
    anyhow::ensure!(
        !certs.is_empty(),
        "{var} {}: no PEM certificate in the file",
        path.display()
    );
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(url: &str) -> FredConfig {
        FredConfig::from_url(url).unwrap()
    }

    #[test]
    fn a_tls_file_with_a_plain_redis_url_is_refused() {
        let tls = RedisTls {
            ca_file: Some("/ca.pem".into()),
            ..Default::default()
        };
        let e = tls.apply(&mut parsed("redis://h:6379")).unwrap_err();
        assert!(e.to_string().contains("rediss://"), "{e}");
        RedisTls::default()
            .apply(&mut parsed("redis://h:6379"))
            .unwrap();
    }

    #[test]
    fn a_missing_ca_file_is_named_in_the_error() {
        let tls = RedisTls {
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..Default::default()
        };
        let e = tls.apply(&mut parsed("rediss://h:6380")).unwrap_err();
        assert!(
            e.to_string()
                .contains("REDIS_TLS_CA_FILE /nonexistent/ca.pem"),
            "{e}"
        );
    }

    #[test]
    fn a_file_without_certificates_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let tls = RedisTls {
            ca_file: Some(path),
            ..Default::default()
        };
        let e = tls.apply(&mut parsed("rediss://h:6380")).unwrap_err();
        assert!(e.to_string().contains("no PEM certificate"), "{e}");
    }

    #[test]
    fn a_client_certificate_without_its_key_is_refused() {
        let tls = RedisTls {
            client_cert_file: Some("/c.pem".into()),
            ..Default::default()
        };
        let e = tls.apply(&mut parsed("rediss://h:6380")).unwrap_err();
        assert!(e.to_string().contains("both"), "{e}");
    }
}
