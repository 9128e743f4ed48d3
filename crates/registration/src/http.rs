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
        Self::with_timeout(base_url, Duration::from_secs(30))
    }

    /// A client with another timeout per request.
    ///
    /// # Errors
    /// [`HttpClientError`].
    pub fn with_timeout(base_url: &str, timeout: Duration) -> Result<Self, HttpClientError> {
        let base = base_url.trim_end_matches('/').to_owned();
        let rest = base
            .strip_prefix("https://")
            .or_else(|| base.strip_prefix("http://"))
            .ok_or(HttpClientError::BaseUrl)?;
        if rest.is_empty() {
            return Err(HttpClientError::BaseUrl);
        }
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(10))
            .https_only(base.starts_with("https://"))
            .user_agent(concat!("mynacard-registration/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(HttpClientError::Build)?;
        Ok(HttpClient { base, client })
    }

    /// The base URL.
    pub fn base_url(&self) -> &str {
        &self.base
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
        let response = builder.send().await.map_err(|e| {
            if e.is_connect() {
                HttpFailure::Connect
            } else {
                HttpFailure::Interrupted
            }
        })?;
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
