//! The HTTP binding: [`HttpClient`] sends the machine's requests with reqwest over rustls (no
//! OpenSSL), on tokio.

use std::time::Duration;

use async_trait::async_trait;

use crate::driver::ServiceClient;
use crate::machine::{HttpFailure, HttpMethod, HttpRequest, HttpResponse};

/// The most of an answer the client reads (the protocol's bodies are a few KiB).
const MAX_BODY: usize = 1 << 20;

/// Why the client could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpClientError {
    /// The base URL is not `http://` or `https://` with a host.
    #[error("base URL must be http:// or https:// with a host")]
    BaseUrl,
    /// The HTTP stack could not be set up.
    #[error("cannot set up the HTTP client")]
    Build(#[source] reqwest::Error),
    /// A CA certificate given to trust is not a PEM certificate.
    #[error("the CA certificate is not a usable PEM certificate")]
    RootCertificate(#[source] reqwest::Error),
    /// The CA bundle given to trust holds no PEM certificate.
    #[error("the CA bundle holds no PEM certificate")]
    NoRootCertificate,
    /// The client identity is not a PEM certificate chain with its PKCS#8 private key.
    #[error("the client identity is not a PEM certificate chain with its PKCS#8 private key")]
    ClientIdentity(#[source] reqwest::Error),
    /// TLS settings were given for an `http://` base URL.
    #[error("TLS settings need an https:// base URL")]
    TlsOverPlainHttp,
}

/// A client for one service.
#[derive(Debug, Clone)]
pub struct HttpClient {
    base: String,
    client: reqwest::Client,
}

impl HttpClient {
    /// A client for the service at `base_url` (e.g. `https://registry.example`), with a 30 s
    /// timeout per request.
    ///
    /// # Errors
    /// [`HttpClientError`].
    pub fn new(base_url: &str) -> Result<Self, HttpClientError> {
        Self::builder(base_url).build()
    }

    /// A client with another timeout per request.
    ///
    /// # Errors
    /// [`HttpClientError`].
    pub fn with_timeout(base_url: &str, timeout: Duration) -> Result<Self, HttpClientError> {
        Self::builder(base_url).timeout(timeout).build()
    }

    /// A client with TLS settings: the CA that signed the service's certificate, and the
    /// terminal's client certificate for mutual TLS (protocol §3).
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use mynacard_registration::http::HttpClient;
    /// let client = HttpClient::builder("https://registry.example")
    ///     .timeout(std::time::Duration::from_secs(10))
    ///     .build()?;
    /// assert_eq!(client.base_url(), "https://registry.example");
    /// # Ok(())
    /// # }
    /// ```
    pub fn builder(base_url: &str) -> HttpClientBuilder {
        HttpClientBuilder {
            base: base_url.trim_end_matches('/').to_owned(),
            timeout: Duration::from_secs(30),
            roots: Vec::new(),
            identity: None,
        }
    }

    /// The base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }
}

/// Settings of an [`HttpClient`] before it is built ([`HttpClient::builder`]).
///
/// Over `https://` the client speaks TLS 1.3 only (protocol §3). Without
/// [`trust_only`](Self::trust_only) it trusts the public web roots; a terminal that talks to one
/// service names that service's CA instead.
pub struct HttpClientBuilder {
    base: String,
    timeout: Duration,
    roots: Vec<reqwest::Certificate>,
    identity: Option<reqwest::Identity>,
}

impl core::fmt::Debug for HttpClientBuilder {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // The identity holds a private key: say only whether there is one.
        f.debug_struct("HttpClientBuilder")
            .field("base", &self.base)
            .field("timeout", &self.timeout)
            .field("roots", &self.roots.len())
            .field("client_identity", &self.identity.is_some())
            .finish()
    }
}

impl HttpClientBuilder {
    /// The timeout per request (default 30 s).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Trusts only the CA certificates in `pem` (one or more PEM certificates) for the
    /// service's certificate, instead of the public web roots.
    ///
    /// # Errors
    /// [`HttpClientError::NoRootCertificate`] when `pem` holds no certificate,
    /// [`HttpClientError::RootCertificate`] when one is not usable.
    pub fn trust_only(mut self, pem: &[u8]) -> Result<Self, HttpClientError> {
        let roots =
            reqwest::Certificate::from_pem_bundle(pem).map_err(HttpClientError::RootCertificate)?;
        if roots.is_empty() {
            // Text without a certificate parses as an empty bundle; trusting nothing is never
            // what was meant.
            return Err(HttpClientError::NoRootCertificate);
        }
        self.roots = roots;
        Ok(self)
    }

    /// Presents this client certificate (mutual TLS): `pem` holds the terminal's certificate,
    /// any intermediates, and its PKCS#8 private key. The service takes the terminal id from the
    /// certificate (protocol §3).
    ///
    /// # Errors
    /// [`HttpClientError::ClientIdentity`] when `pem` is not such a bundle.
    pub fn client_identity(mut self, pem: &[u8]) -> Result<Self, HttpClientError> {
        self.identity =
            Some(reqwest::Identity::from_pem(pem).map_err(HttpClientError::ClientIdentity)?);
        Ok(self)
    }

    /// Builds the client.
    ///
    /// # Errors
    /// [`HttpClientError::BaseUrl`] for a base URL that is not `http(s)://` with a host,
    /// [`HttpClientError::TlsOverPlainHttp`] for TLS settings with `http://`, and
    /// [`HttpClientError::Build`] when the HTTP stack cannot be set up.
    pub fn build(self) -> Result<HttpClient, HttpClientError> {
        let https = self.base.starts_with("https://");
        let rest = self
            .base
            .strip_prefix("https://")
            .or_else(|| self.base.strip_prefix("http://"))
            .ok_or(HttpClientError::BaseUrl)?;
        if rest.is_empty() {
            return Err(HttpClientError::BaseUrl);
        }
        if !https && (!self.roots.is_empty() || self.identity.is_some()) {
            return Err(HttpClientError::TlsOverPlainHttp);
        }
        let mut builder = reqwest::Client::builder()
            .timeout(self.timeout)
            .connect_timeout(Duration::from_secs(10))
            .https_only(https)
            .user_agent(concat!("mynacard-registration/", env!("CARGO_PKG_VERSION")));
        if https {
            builder = builder.min_tls_version(reqwest::tls::Version::TLS_1_3);
        }
        if !self.roots.is_empty() {
            builder = builder.tls_built_in_root_certs(false);
            for root in self.roots {
                builder = builder.add_root_certificate(root);
            }
        }
        if let Some(identity) = self.identity {
            builder = builder.identity(identity);
        }
        let client = builder.build().map_err(HttpClientError::Build)?;
        Ok(HttpClient {
            base: self.base,
            client,
        })
    }
}

#[async_trait]
impl ServiceClient for HttpClient {
    async fn send(&self, request: &HttpRequest) -> Result<HttpResponse, HttpFailure> {
        if request.delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(u64::from(request.delay_ms))).await;
        }
        let url = format!("{}{}", self.base, request.path);
        let mut builder = match request.method {
            HttpMethod::Get => self.client.get(&url),
            HttpMethod::Post => self.client.post(&url),
        };
        builder = builder.header("accept", "application/json");
        for (name, value) in &request.headers {
            builder = builder.header(*name, value);
        }
        if let Some(body) = &request.body {
            builder = builder
                .header("content-type", "application/json")
                .body(body.clone());
        }
        let response = builder.send().await.map_err(|e| send_failure(&e))?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u32>().ok());
        let mut body = Vec::new();
        let mut response = response;
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|_| HttpFailure::Interrupted)?
        {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(HttpFailure::Interrupted);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(HttpResponse {
            status,
            retry_after,
            body,
        })
    }
}

/// What a failed send means for the request: [`HttpFailure::Connect`] when it cannot have
/// reached the service (no connection was made, or it was never built), so that sending it again
/// is safe and a proof is known not to have arrived; [`HttpFailure::Interrupted`] for everything
/// after the request started on a connection (reset, closed, timed out before the answer),
/// where it may have arrived and been acted on.
fn send_failure(e: &reqwest::Error) -> HttpFailure {
    if e.is_connect() || e.is_builder() {
        HttpFailure::Connect
    } else {
        HttpFailure::Interrupted
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    /// A CA certificate as PEM, made for the test.
    fn root_pem() -> Vec<u8> {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().pem().into_bytes()
    }

    fn proof_request() -> HttpRequest {
        HttpRequest {
            method: HttpMethod::Post,
            path: "/v1/registrations/s1/proof".to_owned(),
            headers: Vec::new(),
            body: Some(b"{}".to_vec()),
            delay_ms: 0,
            attempt: 1,
        }
    }

    fn send_once(base: &str) -> Result<HttpResponse, HttpFailure> {
        let client = HttpClient::with_timeout(base, Duration::from_secs(5)).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(client.send(&proof_request()))
    }

    #[test]
    fn no_listener_is_a_request_not_sent() {
        // A port just freed: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        assert_eq!(
            send_once(&format!("http://127.0.0.1:{port}")),
            Err(HttpFailure::Connect)
        );
    }

    #[test]
    fn a_connection_dropped_after_the_request_is_an_unknown_outcome() {
        use std::io::Read as _;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        // Reads the whole request, then goes away without answering, as a service that
        // committed and crashed does.
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut seen = Vec::new();
            let mut buf = [0u8; 4096];
            while !seen.ends_with(b"{}") {
                let n = stream.read(&mut buf).unwrap();
                assert!(n > 0, "the request came whole");
                seen.extend_from_slice(&buf[..n]);
            }
            seen
        });
        assert_eq!(
            send_once(&format!("http://127.0.0.1:{port}")),
            Err(HttpFailure::Interrupted)
        );
        let seen = server.join().unwrap();
        assert!(seen.starts_with(b"POST /v1/registrations/s1/proof"));
    }

    #[test]
    fn base_urls_must_be_http_or_https_with_a_host() {
        for bad in ["ftp://x", "https://", "http://", "registry.example", ""] {
            assert!(
                matches!(HttpClient::new(bad), Err(HttpClientError::BaseUrl)),
                "{bad:?}"
            );
        }
        let client = HttpClient::new("https://registry.example/").unwrap();
        assert_eq!(client.base_url(), "https://registry.example");
    }

    #[test]
    fn a_ca_bundle_must_hold_a_certificate() {
        let builder = HttpClient::builder("https://registry.example");
        assert!(matches!(
            builder.trust_only(b"not a certificate"),
            Err(HttpClientError::NoRootCertificate)
        ));
        let client = HttpClient::builder("https://registry.example")
            .trust_only(&root_pem())
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(client.base_url(), "https://registry.example");
    }

    #[test]
    fn a_client_identity_needs_a_certificate_and_its_key() {
        // A certificate alone is not an identity.
        let err = HttpClient::builder("https://registry.example")
            .client_identity(&root_pem())
            .unwrap_err();
        assert!(matches!(err, HttpClientError::ClientIdentity(_)), "{err:?}");
        let err = HttpClient::builder("https://registry.example")
            .client_identity(b"")
            .unwrap_err();
        assert!(matches!(err, HttpClientError::ClientIdentity(_)), "{err:?}");
    }

    #[test]
    fn tls_settings_refuse_plain_http() {
        let err = HttpClient::builder("http://127.0.0.1:8600")
            .trust_only(&root_pem())
            .unwrap()
            .build()
            .unwrap_err();
        assert!(matches!(err, HttpClientError::TlsOverPlainHttp), "{err:?}");
    }

    #[test]
    fn the_builder_does_not_show_what_it_holds() {
        let builder = HttpClient::builder("https://registry.example")
            .trust_only(&root_pem())
            .unwrap();
        let shown = format!("{builder:?}");
        assert!(shown.contains("roots: 1"), "{shown}");
        assert!(shown.contains("client_identity: false"), "{shown}");
        assert!(!shown.contains("BEGIN"), "{shown}");
    }
}
