//! The demo's account store: checks passwords and issues tokens.
//!
//! It stands in for the platform's real account service. tollgate never
//! sees a password check; it only forwards these routes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
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
/// The most refresh tokens held at once; past it every one is dropped (a
/// demo needs a bound, not a policy).
const MAX_REFRESH_TOKENS: usize = 10_000;

/// Holds the demo users and the signing secret.
#[derive(Clone)]
pub(super) struct AccountStore {
    inner: Arc<Inner>,
}

struct Inner {
    key: EncodingKey,
    users: Vec<DemoUser>,
    /// Live refresh tokens, each to the index of its user in `users`.
    refresh_tokens: Mutex<HashMap<String, usize>>,
}

#[derive(Deserialize)]
struct Login {
    username: String,
    password: String,
}

/// The body of `/auth/refresh` and `/auth/logout`.
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
            inner: Arc::new(Inner {
                key,
                users,
                refresh_tokens: Mutex::default(),
            }),
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
            "/auth/logout" => self.logout(&body),
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
            .position(|u| u.username == login.username && u.password == login.password);
        match user {
            Some(user) => self.issue(user),
            None => json_response(
                StatusCode::UNAUTHORIZED,
                "invalid_grant",
                "wrong username or password",
            ),
        }
    }

    /// Trades a refresh token for new tokens. Each refresh token is random
    /// and works once (it is rotated), as a real store's should.
    fn refresh(&self, body: &[u8]) -> Response<Body> {
        let Ok(refresh) = serde_json::from_slice::<Refresh>(body) else {
            return json_response(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "expected refresh_token",
            );
        };
        // Bound first: a guard in the match would still be held in `issue`.
        let user = self.tokens().remove(&refresh.refresh_token);
        match user {
            Some(user) => self.issue(user),
            None => json_response(
                StatusCode::UNAUTHORIZED,
                "invalid_grant",
                "unknown refresh token",
            ),
        }
    }

    /// Ends a session: its refresh token stops working. Answers 204 either
    /// way, so a caller learns nothing about other tokens.
    fn logout(&self, body: &[u8]) -> Response<Body> {
        if let Ok(logout) = serde_json::from_slice::<Refresh>(body) {
            self.tokens().remove(&logout.refresh_token);
        }
        let mut response = Response::new(full(""));
        *response.status_mut() = StatusCode::NO_CONTENT;
        response
    }

    fn tokens(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.inner
            .refresh_tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Gives a new refresh token to the user at `user` in the user list.
    fn new_refresh_token(&self, user: usize) -> String {
        let token = uuid::Uuid::new_v4().simple().to_string();
        let mut tokens = self.tokens();
        if tokens.len() >= MAX_REFRESH_TOKENS {
            tokens.clear();
        }
        tokens.insert(token.clone(), user);
        token
    }

    /// Signs an access token for the user at `user` in the user list.
    fn issue(&self, index: usize) -> Response<Body> {
        let Some(user) = self.inner.users.get(index) else {
            return json_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "unknown user",
            );
        };
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
            "refresh_token": self.new_refresh_token(index),
        });
        let mut response = Response::new(full(body.to_string()));
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> AccountStore {
        let alice = DemoUser {
            username: "alice",
            password: "wonderland".to_owned(),
            email: "alice@demo.test",
            roles: &["player"],
        };
        AccountStore::new(
            "a-demo-secret-of-thirty-two-bytes!!".to_owned(),
            vec![alice],
        )
    }

    /// Returns the status and the JSON body of `response`.
    async fn read(response: Response<Body>) -> (StatusCode, serde_json::Value) {
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("a full body")
            .to_bytes();
        let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        (status, json)
    }

    fn body(refresh_token: &str) -> Vec<u8> {
        json!({ "refresh_token": refresh_token })
            .to_string()
            .into_bytes()
    }

    async fn login(store: &AccountStore) -> String {
        let login = json!({"username": "alice", "password": "wonderland"}).to_string();
        let (status, json) = read(store.login(login.as_bytes())).await;
        assert_eq!(status, StatusCode::OK);
        json["refresh_token"]
            .as_str()
            .expect("a refresh token")
            .to_owned()
    }

    #[tokio::test]
    async fn a_refresh_token_is_random_works_once_and_not_after_logout() {
        let store = store();
        let first = login(&store).await;
        assert_ne!(first, "alice", "the refresh token is not the username");
        assert_eq!(first.len(), 32);
        assert_ne!(login(&store).await, first, "each login gets its own");

        let (status, json) = read(store.refresh(&body(&first))).await;
        assert_eq!(status, StatusCode::OK);
        let second = json["refresh_token"].as_str().expect("rotated").to_owned();
        assert_ne!(second, first);
        let (status, _) = read(store.refresh(&body(&first))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "a used token is spent");

        let (status, _) = read(store.refresh(&body("alice"))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "the username is no token");

        assert_eq!(
            store.logout(&body(&second)).status(),
            StatusCode::NO_CONTENT
        );
        let (status, _) = read(store.refresh(&body(&second))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "logged out");
    }
}
