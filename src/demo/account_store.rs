//! The demo's account store: checks passwords and issues tokens.
//!
//! It stands in for the platform's real account service. tollgate never
//! sees a password check; it only forwards these routes.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Deserialize;
use serde_json::json;

use super::DemoUser;
use crate::proxy::Body;
use crate::proxy::respond::{full, json_response};

/// The demo issuer; it matches `config/demo.toml`.
const ISSUER: &str = "https://accounts.demo.test";
/// The demo audience; it matches `config/demo.toml`.
const AUDIENCE: &str = "demo-api";
/// How long an access token lives.
const TOKEN_LIFETIME_SECS: u64 = 900;
/// The largest login body read.
const MAX_BODY_BYTES: usize = 16 * 1024;

/// Holds the demo users and the signing secret.
#[derive(Clone)]
pub(super) struct AccountStore {
    inner: Arc<Inner>,
}

struct Inner {
    key: EncodingKey,
    users: Vec<DemoUser>,
}

#[derive(Deserialize)]
struct Login {
    username: String,
    password: String,
}

#[derive(Deserialize)]
struct Refresh {
    refresh_token: String,
}

impl AccountStore {
    /// Builds the store.
    pub(super) fn new(secret: String, users: Vec<DemoUser>) -> Self {
        let key = EncodingKey::from_secret(secret.as_bytes())
            .expect("the generated demo secret is not empty");
        AccountStore {
            inner: Arc::new(Inner { key, users }),
        }
    }

    /// Answers `/auth/login`, `/auth/refresh` and `/auth/logout`.
    pub(super) async fn handle(&self, request: Request<Incoming>) -> Response<Body> {
        if request.method() != Method::POST {
            return json_response(
                StatusCode::METHOD_NOT_ALLOWED,
                "invalid_request",
                "use POST",
            );
        }
        let path = request.uri().path().to_owned();
        let Ok(body) = Limited::new(request.into_body(), MAX_BODY_BYTES)
            .collect()
            .await
        else {
            return json_response(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "unreadable body",
            );
        };
        let body = body.to_bytes();

        match path.as_str() {
            "/auth/login" => self.login(&body),
            "/auth/refresh" => self.refresh(&body),
            "/auth/logout" => {
                let mut response = Response::new(full(""));
                *response.status_mut() = StatusCode::NO_CONTENT;
                response
            }
            _ => json_response(StatusCode::NOT_FOUND, "not_found", "no such route"),
        }
    }

    fn login(&self, body: &[u8]) -> Response<Body> {
        let Ok(login) = serde_json::from_slice::<Login>(body) else {
            return json_response(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "expected username and password",
            );
        };
        let user = self
            .inner
            .users
            .iter()
            .find(|u| u.username == login.username && u.password == login.password);
        match user {
            Some(user) => self.issue(user),
            None => json_response(
                StatusCode::UNAUTHORIZED,
                "invalid_grant",
                "wrong username or password",
            ),
        }
    }

    /// The demo's refresh token is simply the username: a real store would
    /// issue an opaque, revocable one.
    fn refresh(&self, body: &[u8]) -> Response<Body> {
        let Ok(refresh) = serde_json::from_slice::<Refresh>(body) else {
            return json_response(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "expected refresh_token",
            );
        };
        match self
            .inner
            .users
            .iter()
            .find(|u| u.username == refresh.refresh_token)
        {
            Some(user) => self.issue(user),
            None => json_response(
                StatusCode::UNAUTHORIZED,
                "invalid_grant",
                "unknown refresh token",
            ),
        }
    }

    fn issue(&self, user: &DemoUser) -> Response<Body> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs());
        let claims = json!({
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": format!("user-{}", user.username),
            "email": user.email,
            "roles": user.roles,
            "iat": now,
            "exp": now + TOKEN_LIFETIME_SECS,
        });
        let Ok(token) =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.inner.key)
        else {
            return json_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "cannot sign",
            );
        };
        let body = json!({
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": TOKEN_LIFETIME_SECS,
            "refresh_token": user.username,
        });
        let mut response = Response::new(full(body.to_string()));
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        response
    }
}
