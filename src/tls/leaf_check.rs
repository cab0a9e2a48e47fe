//! The client side of TLS to our own loopback daemon, where no CA or name
//! decides trust: the certificate the daemon presents is compared with the
//! one config.xml names (`wsconnector ctl`, `simulate`), or only recorded to
//! see who answers on the port (`cert check`, interception by antivirus or
//! proxies). Handshake signatures are still verified with the provider.

use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// Records the server's certificate and, when pinned, accepts only that one.
#[derive(Debug)]
pub struct LeafCheck {
    /// `Some`: exactly this certificate, nothing else; `None`: any (record only).
    pinned: Option<CertificateDer<'static>>,
    /// The certificate the server presented last.
    seen: Mutex<Option<CertificateDer<'static>>>,
    provider: Arc<CryptoProvider>,
}

impl LeafCheck {
    /// Accepts exactly `leaf`: a program that took the port cannot pass for
    /// the daemon.
    pub fn pinned(leaf: CertificateDer<'static>, provider: Arc<CryptoProvider>) -> LeafCheck {
        LeafCheck {
            pinned: Some(leaf),
            seen: Mutex::new(None),
            provider,
        }
    }

    /// Accepts any certificate, to look at what is served.
    pub fn recording(provider: Arc<CryptoProvider>) -> LeafCheck {
        LeafCheck {
            pinned: None,
            seen: Mutex::new(None),
            provider,
        }
    }

    /// The certificate the server presented, once a handshake got that far.
    pub fn seen(&self) -> Option<CertificateDer<'static>> {
        self.seen.lock().ok().and_then(|s| s.clone())
    }
}

impl ServerCertVerifier for LeafCheck {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Ok(mut seen) = self.seen.lock() {
            *seen = Some(end_entity.clone().into_owned());
        }
        match &self.pinned {
            Some(leaf) if end_entity.as_ref() != leaf.as_ref() => Err(rustls::Error::General(
                "the server's certificate is not the one config.xml names".into(),
            )),
            _ => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
