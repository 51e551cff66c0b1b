//! The emulator behind TLS, as AWS's endpoints are: a certificate authority made for the run,
//! and a front that ends TLS and passes the bytes on to the counting proxy. An HTTPS endpoint
//! that is not AWS makes the functions trust the system's store (`shared::config::trust_roots`),
//! which `SSL_CERT_FILE` names (rustls-native-certs reads it); it names a file holding just
//! this CA, one certificate, about what the five Amazon roots compiled into the functions cost
//! to load on AWS. The handshake is then the function's own work, under its CPU share, in
//! whichever phase opens the first connection (its first invocation: the functions make no
//! AWS call during init).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, rustls};

pub struct TlsFront {
    /// `https://127.0.0.1:{port}`.
    pub url: String,
    /// The trust store the functions get as `SSL_CERT_FILE`.
    pub trust_store: PathBuf,
    accepting: tokio::task::JoinHandle<()>,
}

impl TlsFront {
    /// Serves TLS on a new port of 127.0.0.1 in front of `upstream` (`http://host:port`),
    /// with the trust store written into `dir`.
    pub async fn start(upstream: &str, dir: &Path) -> Result<Self> {
        let upstream = upstream.trim_start_matches("http://").trim_end_matches('/').to_owned();
        let mut authority = rcgen::CertificateParams::new(Vec::<String>::new())?;
        authority.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        authority.distinguished_name.push(rcgen::DnType::CommonName, "ecommerce-rs bench CA");
        authority.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::DigitalSignature];
        let ca = rcgen::CertifiedIssuer::self_signed(authority, rcgen::KeyPair::generate()?)?;
        let key = rcgen::KeyPair::generate()?;
        let certificate = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])?.signed_by(&key, &ca)?;

        std::fs::create_dir_all(dir)?;
        let trust_store = dir.join("bench-ca.pem");
        std::fs::write(&trust_store, ca.pem()).with_context(|| format!("writing {}", trust_store.display()))?;

        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let private = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(vec![certificate.der().clone(), ca.der().clone()], private)?;
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.context("binding the TLS front")?;
        let url = format!("https://{}", listener.local_addr()?);
        let accepting = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (acceptor, upstream) = (acceptor.clone(), upstream.clone());
                tokio::spawn(async move {
                    // Small TLS records one way and delayed ACKs the other would stall each
                    // handshake by ~40 ms (Nagle's algorithm); AWS's endpoints do not.
                    let _ = stream.set_nodelay(true);
                    // A failed handshake is the client's to report (its invocation fails).
                    let Ok(mut tls) = acceptor.accept(stream).await else { return };
                    let Ok(mut plain) = TcpStream::connect(&upstream).await else { return };
                    let _ = plain.set_nodelay(true);
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                });
            }
        });
        Ok(Self { url, trust_store, accepting })
    }

    /// A function's environment with its AWS endpoint behind this front.
    pub fn apply(&self, environment: &mut BTreeMap<String, String>) {
        environment.insert("AWS_ENDPOINT_URL".into(), self.url.clone());
        environment.insert("SSL_CERT_FILE".into(), self.trust_store.display().to_string());
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}
