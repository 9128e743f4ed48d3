//! The HTTP binding: routes, body parsing into protocol errors, maintenance and `Retry-After`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use mynacard_protocol::errors::{ErrorBody, ErrorCode};
use mynacard_protocol::messages::PREFER_RESPOND_ASYNC;
use mynacard_protocol::messages::{Operation, Proof, StartSession, paths};
use serde::de::DeserializeOwned;

use crate::limits::peer_key;
use crate::service::{Answer, Registry};
use crate::tls::ClientTerminal;

/// The terminal of the request's client certificate, if its connection presented one.
type Client = Option<Extension<ClientTerminal>>;

fn terminal(client: &Client) -> Option<&str> {
    client
        .as_ref()
        .map(|Extension(ClientTerminal(t))| t.as_str())
}

/// Largest request body accepted: a proof with a certificate, evidence and signatures is a few
/// kilobytes.
const BODY_LIMIT: usize = 64 * 1024;

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, self.body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        // A 202 is only ever the pending answer a proof asked for (protocol §16.1).
        if self.status == 202 {
            headers.insert(
                "preference-applied",
                HeaderValue::from_static(PREFER_RESPOND_ASYNC),
            );
        }
        response
    }
}

/// Parses a JSON body, telling a wrong protocol version from a malformed message.
fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, Answer> {
    serde_json::from_slice(body).map_err(|_| {
        #[derive(serde::Deserialize)]
        struct VersionOnly {
            v: Option<serde_json::Value>,
        }
        let code = match serde_json::from_slice::<VersionOnly>(body) {
            Ok(VersionOnly { v: Some(v) }) if v != "1" => ErrorCode::UnsupportedVersion,
            _ => ErrorCode::BadRequest,
        };
        Answer::error(ErrorBody::new(
            code,
            "the request body is not a valid message",
        ))
    })
}

type Body = Result<Bytes, BytesRejection>;

/// The body, or the protocol error for one that could not be read (too large, broken).
fn body_bytes(body: Body) -> Result<Bytes, Answer> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Answer::error(ErrorBody::new(
                ErrorCode::PayloadTooLarge,
                "the request body is over 64 KiB",
            ))
        } else {
            Answer::error(ErrorBody::new(
                ErrorCode::BadRequest,
                "the request body cannot be read",
            ))
        }
    })
}

async fn start(registry: &Registry, op: Operation, client: Client, body: Body) -> Answer {
    let parsed = body_bytes(body).and_then(|b| parse::<StartSession>(&b));
    match parsed {
        Ok(start) => registry.start(op, start, terminal(&client)).await,
        Err(answer) => answer,
    }
}

/// Whether the request's `Prefer` headers ask for `respond-async` (RFC 7240: a list of
/// preferences, each possibly with parameters, names case-insensitive).
fn prefers_async(headers: &HeaderMap) -> bool {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| {
            p.split(';')
                .next()
                .is_some_and(|name| name.trim().eq_ignore_ascii_case(PREFER_RESPOND_ASYNC))
        })
}

async fn proof(
    registry: &Registry,
    op: Operation,
    session_id: &str,
    headers: &HeaderMap,
    client: Client,
    body: Body,
) -> Answer {
    let parsed = body_bytes(body).and_then(|b| parse::<Proof>(&b));
    match parsed {
        Ok(proof) => {
            registry
                .proof(
                    op,
                    session_id,
                    proof,
                    prefers_async(headers),
                    terminal(&client),
                )
                .await
        }
        Err(answer) => answer,
    }
}

async fn maintenance_gate(
    State(registry): State<Arc<Registry>>,
    req: Request,
    next: Next,
) -> Response {
    if let Some(secs) = registry.maintenance() {
        return Answer::error(
            ErrorBody::new(ErrorCode::Maintenance, "the service is in maintenance")
                .with_retry_after(secs),
        )
        .into_response();
    }
    next.run(req).await
}

/// Limits each peer address (an IPv6 peer by its /64) before its request body is read. A
/// request without a peer address (a router driven directly, as in unit tests) is not limited
/// here; the service's listeners always give one.
async fn peer_gate(State(registry): State<Arc<Registry>>, req: Request, next: Next) -> Response {
    if let Some(limiter) = &registry.peer_limiter
        && let Some(ConnectInfo(addr)) = req.extensions().get::<ConnectInfo<SocketAddr>>()
        && let Err(secs) = limiter.check(&peer_key(addr.ip()), Instant::now())
    {
        return Answer::error(
            ErrorBody::new(
                ErrorCode::RateLimited,
                "too many requests from this address",
            )
            .with_retry_after(secs),
        )
        .into_response();
    }
    next.run(req).await
}

async fn not_found() -> Answer {
    Answer::error(ErrorBody::new(ErrorCode::BadRequest, "no such endpoint")).with_status(404)
}

async fn method_not_allowed() -> Answer {
    Answer::error(ErrorBody::new(
        ErrorCode::BadRequest,
        "this endpoint does not take this HTTP method",
    ))
    .with_status(405)
}

/// The `{session_id}` of a path; one that cannot be decoded is answered with the protocol's
/// `E_BAD_REQUEST` body (and never logged).
struct SessionPath(String);

impl<S: Send + Sync> FromRequestParts<S> for SessionPath {
    type Rejection = Answer;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<String>::from_request_parts(parts, state)
            .await
            .map(|Path(id)| SessionPath(id))
            .map_err(|_| {
                Answer::error(ErrorBody::new(
                    ErrorCode::BadRequest,
                    "the session id in the path cannot be read",
                ))
            })
    }
}

impl Answer {
    fn with_status(mut self, status: u16) -> Answer {
        self.status = status;
        self
    }
}

/// The service's routes over a shared registry.
pub fn router(registry: Arc<Registry>) -> Router {
    let v1 = Router::new()
        .route(
            paths::REGISTRATIONS,
            post(
                |State(r): State<Arc<Registry>>, client: Client, body: Body| async move {
                    start(&r, Operation::RegisterInsuranceUse, client, body).await
                },
            ),
        )
        .route(
            "/v1/registrations/{session_id}/proof",
            post(
                |State(r): State<Arc<Registry>>,
                 SessionPath(id): SessionPath,
                 headers: HeaderMap,
                 client: Client,
                 body: Body| async move {
                    proof(
                        &r,
                        Operation::RegisterInsuranceUse,
                        &id,
                        &headers,
                        client,
                        body,
                    )
                    .await
                },
            ),
        )
        .route(
            "/v1/registrations/{session_id}",
            get(
                |State(r): State<Arc<Registry>>,
                 SessionPath(id): SessionPath,
                 headers: HeaderMap,
                 client: Client| async move {
                    let authorization = headers
                        .get(header::AUTHORIZATION)
                        .and_then(|v| v.to_str().ok());
                    r.registration_status(&id, authorization, terminal(&client))
                        .await
                },
            ),
        )
        .route(
            paths::ELIGIBILITY,
            post(
                |State(r): State<Arc<Registry>>, client: Client, body: Body| async move {
                    start(&r, Operation::CheckEligibility, client, body).await
                },
            ),
        )
        .route(
            "/v1/eligibility/{session_id}/proof",
            post(
                |State(r): State<Arc<Registry>>,
                 SessionPath(id): SessionPath,
                 headers: HeaderMap,
                 client: Client,
                 body: Body| async move {
                    proof(&r, Operation::CheckEligibility, &id, &headers, client, body).await
                },
            ),
        )
        .route(
            paths::DEREGISTRATIONS,
            post(
                |State(r): State<Arc<Registry>>, client: Client, body: Body| async move {
                    start(&r, Operation::DeregisterInsuranceUse, client, body).await
                },
            ),
        )
        .route(
            "/v1/deregistrations/{session_id}/proof",
            post(
                |State(r): State<Arc<Registry>>,
                 SessionPath(id): SessionPath,
                 headers: HeaderMap,
                 client: Client,
                 body: Body| async move {
                    proof(
                        &r,
                        Operation::DeregisterInsuranceUse,
                        &id,
                        &headers,
                        client,
                        body,
                    )
                    .await
                },
            ),
        )
        .route(
            paths::CONSENT,
            get(|State(r): State<Arc<Registry>>| async move { r.consent() }),
        )
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(&registry),
            peer_gate,
        ))
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(&registry),
            maintenance_gate,
        ));
    Router::new()
        .merge(v1)
        // Liveness for load balancers: answers even in maintenance.
        .route("/healthz", get(|| async { "ok" }))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(registry)
}
