//! rustls configuration for `wss://`, shared by the `rustls` feature of
//! `ws-tokio`, `ws-async-std` and `ws-blocking`.
//!
//! The adapters wrap their streams (tokio-rustls, futures-rustls,
//! `rustls::StreamOwned`); what is the same for all of them lives here:
//! loading PEM files, building a [`ServerConfig`] and a [`ClientConfig`],
//! turning a URL host into a [`ServerName`] for SNI, and finding the TLS
//! cause of an error.
//!
//! # One crypto provider, chosen explicitly
//!
//! Every config is built with `builder_with_provider` and ring's provider
//! ([`crypto_provider`]), so no process-wide default provider is needed and
//! none is installed: linking another crate that enables a different
//! rustls provider cannot make these builders panic. A [`ClientConfig`] or
//! [`ServerConfig`] you build yourself is used as given.
//!
//! ```no_run
//! # fn demo() -> std::io::Result<()> {
//! // Server: certificate chain and key from PEM files, ALPN http/1.1.
//! let server = ws_rustls::ServerTls::from_pem_files("cert.pem", "key.pem")?.build()?;
//! // Client: the webpki roots plus a private CA.
//! let client = ws_rustls::ClientTls::new().add_roots_from_pem_file("ca.pem")?.build()?;
//! # let _ = (server, client); Ok(()) }
//! ```

use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::io;
use std::path::Path;
use std::sync::Arc;

pub use rustls;
pub use rustls::{ClientConfig, RootCertStore, ServerConfig};
pub use rustls_pki_types as pki_types;

/// The ALPN protocol a WebSocket handshake runs over (RFC 6455 §4.1: an
/// HTTP/1.1 upgrade).
pub const ALPN_HTTP11: &[u8] = b"http/1.1";

/// The crypto provider every config built here uses: ring.
pub fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

fn tls_to_io(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, e)
}

/// Reads every certificate (`CERTIFICATE` blocks) from a PEM file, in order:
/// for a server, its certificate first, then the intermediates.
pub fn load_certs(path: impl AsRef<Path>) -> io::Result<Vec<CertificateDer<'static>>> {
    let path = path.as_ref();
    let pem = std::fs::read(path)?;
    parse_certs(&pem).map_err(|e| invalid(format!("{}: {e}", path.display())))
}

/// Parses every certificate from PEM text. An input without one is an error.
pub fn parse_certs(pem: &[u8]) -> io::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(format!("bad PEM certificate: {e}")))?;
    if certs.is_empty() {
        return Err(invalid("no CERTIFICATE in the PEM input".into()));
    }
    Ok(certs)
}

/// Reads the first private key (PKCS#8, PKCS#1 RSA or SEC1 EC) from a PEM
/// file.
pub fn load_private_key(path: impl AsRef<Path>) -> io::Result<PrivateKeyDer<'static>> {
    let path = path.as_ref();
    let pem = std::fs::read(path)?;
    parse_private_key(&pem).map_err(|e| invalid(format!("{}: {e}", path.display())))
}

/// Parses the first private key from PEM text.
pub fn parse_private_key(pem: &[u8]) -> io::Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| invalid(format!("no usable private key: {e}")))
}

/// The name a client checks the server's certificate against and sends as
/// SNI, from a URL host: a DNS name, or an IP address (`127.0.0.1`, `[::1]`
/// or `::1`), which is checked against the certificate's IP SANs and, as
/// RFC 6066 §3 asks, not sent as SNI.
pub fn server_name(host: &str) -> io::Result<ServerName<'static>> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_string())
        .map_err(|_| invalid(format!("{host:?} is not a valid TLS server name")))
}

/// The rustls error behind an error from an adapter (an `Error::Io` whose
/// source is a [`rustls::Error`], as TLS streams report them), e.g. to tell
/// an untrusted certificate from a refused connection.
pub fn tls_error(err: &ws_proto::Error) -> Option<&rustls::Error> {
    match err {
        ws_proto::Error::Io(io) => io_tls_error(&io.0),
        _ => None,
    }
}

/// The rustls error inside an `io::Error`, if there is one.
pub fn io_tls_error(err: &io::Error) -> Option<&rustls::Error> {
    err.get_ref()?.downcast_ref::<rustls::Error>()
}

/// Whether and how a server asks clients for certificates (mutual TLS).
#[derive(Debug, Clone)]
enum ClientAuth {
    None,
    Optional(Arc<RootCertStore>),
    Required(Arc<RootCertStore>),
}

/// Builds a server's [`ServerConfig`]: a certificate chain and key, ALPN
/// `http/1.1`, and optionally client certificates (mTLS).
#[derive(Debug)]
pub struct ServerTls {
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    client_auth: ClientAuth,
}

impl ServerTls {
    /// A server with this certificate chain (leaf first) and private key.
    pub fn new(certs: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) -> Self {
        ServerTls {
            certs,
            key,
            client_auth: ClientAuth::None,
        }
    }

    /// A server with the chain and key read from PEM files.
    pub fn from_pem_files(cert: impl AsRef<Path>, key: impl AsRef<Path>) -> io::Result<Self> {
        Ok(Self::new(load_certs(cert)?, load_private_key(key)?))
    }

    /// Requires every client to present a certificate issued by one of
    /// `roots`; the TLS handshake fails otherwise.
    pub fn require_client_certs(mut self, roots: RootCertStore) -> Self {
        self.client_auth = ClientAuth::Required(Arc::new(roots));
        self
    }

    /// Asks clients for a certificate issued by one of `roots`, but also
    /// accepts clients that send none (one that sends an untrusted
    /// certificate is still refused).
    pub fn allow_client_certs(mut self, roots: RootCertStore) -> Self {
        self.client_auth = ClientAuth::Optional(Arc::new(roots));
        self
    }

    /// Builds the config. Fails on a key that does not match the
    /// certificate or a type ring cannot use, or empty client roots.
    pub fn build(self) -> io::Result<Arc<ServerConfig>> {
        let provider = crypto_provider();
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(tls_to_io)?;
        let builder = match self.client_auth {
            ClientAuth::None => builder.with_no_client_auth(),
            ClientAuth::Optional(roots) => builder.with_client_cert_verifier(
                WebPkiClientVerifier::builder_with_provider(roots, provider)
                    .allow_unauthenticated()
                    .build()
                    .map_err(|e| invalid(format!("client certificate roots: {e}")))?,
            ),
            ClientAuth::Required(roots) => builder.with_client_cert_verifier(
                WebPkiClientVerifier::builder_with_provider(roots, provider)
                    .build()
                    .map_err(|e| invalid(format!("client certificate roots: {e}")))?,
            ),
        };
        let mut config = builder
            .with_single_cert(self.certs, self.key)
            .map_err(tls_to_io)?;
        config.alpn_protocols = vec![ALPN_HTTP11.to_vec()];
        Ok(Arc::new(config))
    }
}

/// Builds a client's [`ClientConfig`]: which roots to trust, an optional
/// client certificate, or a whole config of your own.
///
/// [`ClientTls::new`] trusts the Mozilla roots of `webpki-roots`, like a
/// browser would, and nothing else.
#[derive(Debug, Clone)]
pub struct ClientTls {
    webpki_roots: bool,
    #[cfg(feature = "native-roots")]
    native_roots: bool,
    extra_roots: Vec<CertificateDer<'static>>,
    client_cert: Option<(Vec<CertificateDer<'static>>, Arc<PrivateKeyDer<'static>>)>,
    config: Option<Arc<ClientConfig>>,
}

impl Default for ClientTls {
    fn default() -> Self {
        Self::new()
    }
}

impl ClientTls {
    /// Trusts the `webpki-roots` (Mozilla) root certificates.
    pub fn new() -> Self {
        ClientTls {
            webpki_roots: true,
            #[cfg(feature = "native-roots")]
            native_roots: false,
            extra_roots: Vec::new(),
            client_cert: None,
            config: None,
        }
    }

    /// Uses `config` as given (roots, verifier, ALPN, versions, provider):
    /// the other options of this builder are ignored.
    pub fn from_config(config: Arc<ClientConfig>) -> Self {
        ClientTls {
            config: Some(config),
            ..Self::new()
        }
    }

    /// Does not trust the `webpki-roots`; only roots added with
    /// [`add_root`](Self::add_root) (or the platform's, if asked for).
    pub fn without_webpki_roots(mut self) -> Self {
        self.webpki_roots = false;
        self
    }

    /// Also trusts the platform's root certificates (rustls-native-certs).
    /// [`build`](Self::build) fails if none could be loaded.
    #[cfg(feature = "native-roots")]
    pub fn with_native_roots(mut self) -> Self {
        self.native_roots = true;
        self
    }

    /// Also trusts this root certificate (a private CA, a test CA).
    pub fn add_root(mut self, cert: CertificateDer<'static>) -> Self {
        self.extra_roots.push(cert);
        self
    }

    /// Also trusts every certificate in a PEM file.
    pub fn add_roots_from_pem_file(mut self, path: impl AsRef<Path>) -> io::Result<Self> {
        self.extra_roots.extend(load_certs(path)?);
        Ok(self)
    }

    /// Presents this certificate chain (leaf first) and key to servers that
    /// ask for one (mutual TLS).
    pub fn client_auth(
        mut self,
        certs: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Self {
        self.client_cert = Some((certs, Arc::new(key)));
        self
    }

    /// Like [`client_auth`](Self::client_auth), from PEM files.
    pub fn client_auth_from_pem_files(
        self,
        cert: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> io::Result<Self> {
        Ok(self.client_auth(load_certs(cert)?, load_private_key(key)?))
    }

    /// Builds the config, with ALPN `http/1.1`. Fails when no root is
    /// trusted, a root cannot be parsed, or the client key does not suit
    /// its certificate.
    pub fn build(&self) -> io::Result<Arc<ClientConfig>> {
        if let Some(config) = &self.config {
            return Ok(config.clone());
        }
        let mut roots = RootCertStore::empty();
        if self.webpki_roots {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        #[cfg(feature = "native-roots")]
        if self.native_roots {
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                let why = found
                    .errors
                    .first()
                    .map(|e| e.to_string())
                    .unwrap_or_else(|| "none found".into());
                return Err(invalid(format!("no platform root certificates: {why}")));
            }
        }
        for cert in &self.extra_roots {
            roots
                .add(cert.clone())
                .map_err(|e| invalid(format!("bad root certificate: {e}")))?;
        }
        if roots.is_empty() {
            return Err(invalid("no trusted root certificates".into()));
        }
        let builder = ClientConfig::builder_with_provider(crypto_provider())
            .with_safe_default_protocol_versions()
            .map_err(tls_to_io)?
            .with_root_certificates(roots);
        let mut config = match &self.client_cert {
            None => builder.with_no_client_auth(),
            Some((certs, key)) => builder
                .with_client_auth_cert(certs.clone(), key.clone_key())
                .map_err(tls_to_io)?,
        };
        config.alpn_protocols = vec![ALPN_HTTP11.to_vec()];
        Ok(Arc::new(config))
    }
}

/// The config of [`ClientTls::new`] (webpki roots, ALPN `http/1.1`),
/// built on first use and shared after that: what a `wss://` connect
/// without a TLS config of its own uses.
pub fn webpki_client_config() -> io::Result<Arc<ClientConfig>> {
    static CONFIG: std::sync::OnceLock<Arc<ClientConfig>> = std::sync::OnceLock::new();
    if let Some(c) = CONFIG.get() {
        return Ok(c.clone());
    }
    let c = ClientTls::new().build()?;
    Ok(CONFIG.get_or_init(|| c).clone())
}

/// The host and port of a `wss://` (or `https://`) URL, for the TCP
/// connection and SNI; 443 when the URL gives no port. Any other scheme is
/// a usage error.
pub fn wss_host_port(uri: &ws_proto::http::Uri) -> Result<(String, u16), ws_proto::Error> {
    let bad = ws_proto::Error::Usage(ws_proto::UsageError::InvalidRequest);
    match uri.scheme_str() {
        Some("wss") | Some("https") => {}
        _ => return Err(bad),
    }
    let host = uri.host().ok_or(bad)?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Ok((host.to_string(), uri.port_u16().unwrap_or(443)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn self_signed() -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }

    #[test]
    fn pem_round_trip_and_server_config() {
        let (cert, key) = self_signed();
        let certs = parse_certs(cert.as_bytes()).unwrap();
        assert_eq!(certs.len(), 1);
        let key = parse_private_key(key.as_bytes()).unwrap();
        let config = ServerTls::new(certs, key).build().unwrap();
        assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
    }

    #[test]
    fn no_process_wide_provider_needed() {
        // Nothing in this process installs a default provider; the
        // builders name theirs, so they work (rustls' own `builder()`
        // would panic here if more than one provider were compiled in).
        assert!(rustls::crypto::CryptoProvider::get_default().is_none());
        let (cert, key) = self_signed();
        let certs = parse_certs(cert.as_bytes()).unwrap();
        ServerTls::new(certs.clone(), parse_private_key(key.as_bytes()).unwrap())
            .build()
            .unwrap();
        ClientTls::new()
            .add_root(certs[0].clone())
            .client_auth(certs, parse_private_key(key.as_bytes()).unwrap())
            .build()
            .unwrap();
        assert!(rustls::crypto::CryptoProvider::get_default().is_none());
    }

    #[test]
    fn bad_pem_is_an_error() {
        assert!(parse_certs(b"not pem").is_err());
        assert!(
            parse_private_key(b"-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n").is_err()
        );
        let (cert, _) = self_signed();
        // A certificate where the key should be.
        assert!(parse_private_key(cert.as_bytes()).is_err());
    }

    #[test]
    fn mismatched_key_fails_to_build() {
        let (cert, _) = self_signed();
        let (_, other_key) = self_signed();
        let r = ServerTls::new(
            parse_certs(cert.as_bytes()).unwrap(),
            parse_private_key(other_key.as_bytes()).unwrap(),
        )
        .build();
        assert!(r.is_err());
    }

    #[test]
    fn client_roots() {
        assert!(ClientTls::new().build().is_ok());
        let e = ClientTls::new().without_webpki_roots().build().unwrap_err();
        assert!(e.to_string().contains("no trusted root"), "{e}");
        let (cert, _) = self_signed();
        let c = ClientTls::new()
            .without_webpki_roots()
            .add_root(parse_certs(cert.as_bytes()).unwrap().remove(0))
            .build()
            .unwrap();
        assert_eq!(c.alpn_protocols, vec![b"http/1.1".to_vec()]);
    }

    #[cfg(feature = "native-roots")]
    #[test]
    fn platform_roots() {
        // Only the platform's roots: this machine has a CA bundle
        // (/etc/ssl/certs), so some must load; without one, the error
        // says so instead of yielding a config that trusts nothing.
        let r = ClientTls::new()
            .without_webpki_roots()
            .with_native_roots()
            .build();
        if std::path::Path::new("/etc/ssl/certs").is_dir() {
            r.unwrap();
        } else if let Err(e) = r {
            assert!(e.to_string().contains("platform root"), "{e}");
        }
    }

    #[test]
    fn server_names() {
        assert!(matches!(
            server_name("localhost").unwrap(),
            ServerName::DnsName(_)
        ));
        assert!(matches!(
            server_name("127.0.0.1").unwrap(),
            ServerName::IpAddress(_)
        ));
        assert!(matches!(
            server_name("[::1]").unwrap(),
            ServerName::IpAddress(_)
        ));
        assert!(server_name("bad host!").is_err());
    }

    #[test]
    fn wss_urls() {
        let u: ws_proto::http::Uri = "wss://example.org/x".parse().unwrap();
        assert_eq!(wss_host_port(&u).unwrap(), ("example.org".into(), 443));
        let u: ws_proto::http::Uri = "wss://[::1]:8443/".parse().unwrap();
        assert_eq!(wss_host_port(&u).unwrap(), ("::1".into(), 8443));
        let u: ws_proto::http::Uri = "ws://example.org/".parse().unwrap();
        assert!(wss_host_port(&u).is_err());
    }
}
