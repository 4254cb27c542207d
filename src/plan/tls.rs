//! TLS to the nodes, on rustls (the driver's `rustls-023` integration; no OpenSSL): the client
//! configuration built from `[cluster.tls]` while the plan is built, so that a missing,
//! unreadable or wrong file is an error naming its field and path before any connection.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::aws_lc_rs;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, Error, InconsistentKeys, RootCertStore,
    SignatureScheme,
};

use crate::spec::TlsSpec;

/// A problem with one of the files: the field that names it and what is wrong, the path in
/// the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFileError {
    pub field: &'static str,
    pub message: String,
}

impl fmt::Display for TlsFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

fn file_error(field: &'static str, message: String) -> TlsFileError {
    TlsFileError { field, message }
}

/// Builds the client configuration: the CA as the only trust root, the client certificate and
/// key when both are given (mutual TLS), and the node's address checked against its
/// certificate unless `verify_server_name = false`.
pub fn client_config(spec: &TlsSpec) -> Result<Arc<ClientConfig>, TlsFileError> {
    let provider = Arc::new(aws_lc_rs::default_provider());
    let mut roots = RootCertStore::empty();
    for ca in read_certs("cluster.tls.ca_file", &spec.ca_file)? {
        roots.add(ca).map_err(|e| {
            file_error(
                "cluster.tls.ca_file",
                format!("`{}`: not a usable CA certificate: {e}", spec.ca_file),
            )
        })?;
    }
    let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| file_error("cluster.tls.ca_file", format!("`{}`: {e}", spec.ca_file)))?;
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| file_error("cluster.tls", format!("no usable TLS version: {e}")))?;
    let builder = if spec.verify_server_name {
        builder.with_webpki_verifier(verifier)
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(CaOnly(verifier)))
    };
    let config = match (&spec.cert_file, &spec.key_file) {
        (None, None) => builder.with_no_client_auth(),
        (Some(_), None) => {
            return Err(file_error(
                "cluster.tls.cert_file",
                "a client certificate needs cluster.tls.key_file".into(),
            ));
        }
        (None, Some(_)) => {
            return Err(file_error(
                "cluster.tls.key_file",
                "a client key needs cluster.tls.cert_file".into(),
            ));
        }
        (Some(cert_file), Some(key_file)) => {
            let certs = read_certs("cluster.tls.cert_file", cert_file)?;
            let key = read_key(key_file)?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| match e {
                    Error::InconsistentKeys(InconsistentKeys::KeyMismatch) => file_error(
                        "cluster.tls.key_file",
                        format!(
                            "`{key_file}` is not the key of the certificate in `{cert_file}` \
                             (cluster.tls.cert_file)"
                        ),
                    ),
                    e => file_error(
                        "cluster.tls.key_file",
                        format!("`{key_file}` cannot be used with `{cert_file}`: {e}"),
                    ),
                })?
        }
    };
    Ok(Arc::new(config))
}

fn read(field: &'static str, path: &str) -> Result<Vec<u8>, TlsFileError> {
    std::fs::read(Path::new(path))
        .map_err(|e| file_error(field, format!("cannot read `{path}`: {e}")))
}

fn read_certs(
    field: &'static str,
    path: &str,
) -> Result<Vec<CertificateDer<'static>>, TlsFileError> {
    let pem = read(field, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(field, format!("`{path}`: not a PEM certificate file: {e}")))?;
    if certs.is_empty() {
        return Err(file_error(
            field,
            format!("`{path}` holds no certificate (expected PEM `BEGIN CERTIFICATE` blocks)"),
        ));
    }
    Ok(certs)
}

fn read_key(path: &str) -> Result<PrivateKeyDer<'static>, TlsFileError> {
    let field = "cluster.tls.key_file";
    let pem = read(field, path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
        file_error(
            field,
            format!("`{path}` holds no usable private key (PEM PKCS#8, PKCS#1 or SEC1): {e}"),
        )
    })
}

/// `verify_server_name = false`: the chain must still lead to the CA and the signatures must
/// hold; only the match between the certificate's names and the dialled address is waived.
#[derive(Debug)]
struct CaOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for CaOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(ca: &str) -> TlsSpec {
        TlsSpec {
            ca_file: ca.to_string(),
            cert_file: None,
            key_file: None,
            verify_server_name: true,
        }
    }

    fn temp(name: &str, text: &str) -> String {
        let dir = std::env::temp_dir().join(format!("cqlpulse-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }

    #[test]
    fn a_missing_ca_file_names_the_field_and_the_path() {
        let e = client_config(&spec("/nonexistent/ca.pem")).unwrap_err();
        assert_eq!(e.field, "cluster.tls.ca_file");
        assert!(
            e.message.contains("cannot read `/nonexistent/ca.pem`"),
            "{e}"
        );
    }

    #[test]
    fn a_file_without_certificates_is_refused() {
        let path = temp("empty.pem", "not a certificate\n");
        let e = client_config(&spec(&path)).unwrap_err();
        assert_eq!(e.field, "cluster.tls.ca_file");
        assert!(e.message.contains("holds no certificate"), "{e}");
    }
}
