//! Bearer tokens with two scopes. Tokens are compared as SHA-256 digests with `subtle`, so
//! neither a token's bytes nor its length shows in the time an answer takes.

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::AppState;
use super::error::ApiError;
use crate::config::ApiSettings;

/// The cookie the page keeps a read token in, so its CSV links work in a browser.
pub const COOKIE: &str = "costcast_token";

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// Read every report.
    Read,
    /// Read, restore objects and set budget modes.
    Admin,
}

/// The configured tokens, as digests.
#[derive(Clone)]
pub struct Tokens {
    tokens: Vec<([u8; 32], Scope)>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokens({} configured)", self.tokens.len())
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Tokens {
    /// The tokens of the API settings.
    pub fn new(settings: &ApiSettings) -> Tokens {
        let read = settings.read_tokens.iter().map(|t| (t, Scope::Read));
        let admin = settings.admin_tokens.iter().map(|t| (t, Scope::Admin));
        Tokens {
            tokens: read
                .chain(admin)
                .map(|(t, s)| (digest(t.expose()), s))
                .collect(),
        }
    }

    /// The widest scope `presented` grants. Every configured token is compared, so the answer
    /// takes as long whichever one matches.
    pub fn scope_of(&self, presented: &str) -> Option<Scope> {
        let presented = digest(presented);
        let mut best = None;
        for (token, scope) in &self.tokens {
            if bool::from(token.ct_eq(&presented)) {
                best = best.max(Some(*scope));
            }
        }
        best
    }
}

/// The token of a request: the `Authorization: Bearer` header, else the page's cookie. A
/// cookie never grants more than read, so a forged cross-site POST cannot act.
fn presented(request: &Request) -> Option<(String, bool)> {
    let headers = request.headers();
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let text = value.to_str().ok()?;
        let (scheme, token) = text.split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| (token.trim().to_string(), false));
    }
    cookie_token(headers).map(|t| (t, true))
}

/// The page cookie's token, if the request carries one.
pub fn cookie_token(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_string())
}

/// The scope a request carries, if any.
pub fn scope_of_request(state: &AppState, request: &Request) -> Option<Scope> {
    let (token, from_cookie) = presented(request)?;
    let scope = state.tokens.scope_of(&token)?;
    Some(if from_cookie { Scope::Read } else { scope })
}

async fn require(state: &AppState, request: Request, next: Next, needed: Scope) -> Response {
    match scope_of_request(state, &request) {
        None => ApiError::unauthorized().into_response(),
        Some(scope) if scope < needed => ApiError::forbidden().into_response(),
        Some(_) => next.run(request).await,
    }
}

/// Middleware: any valid token.
pub async fn require_read(State(state): State<AppState>, request: Request, next: Next) -> Response {
    require(&state, request, next, Scope::Read).await
}

/// Middleware: an admin token in the `Authorization` header.
pub async fn require_admin(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    require(&state, request, next, Scope::Admin).await
}

/// Middleware for `/metrics`: open when configured so, else any valid token.
pub async fn require_metrics(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if state.ctx.config.api.metrics_public {
        return next.run(request).await;
    }
    require(&state, request, next, Scope::Read).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ApiSettings, Secret};

    #[test]
    fn a_token_grants_its_widest_scope_and_nothing_else_matches() {
        let settings = ApiSettings {
            listen: "127.0.0.1:0".parse().unwrap(),
            read_tokens: vec![
                Secret::new("reader-0123456789"),
                Secret::new("both-0123456789ab"),
            ],
            admin_tokens: vec![Secret::new("both-0123456789ab")],
            metrics_public: false,
            cors_origins: vec![],
            refresh_secs: 30,
            stale_run_hours: 36,
        };
        let tokens = Tokens::new(&settings);
        assert_eq!(tokens.scope_of("reader-0123456789"), Some(Scope::Read));
        assert_eq!(tokens.scope_of("both-0123456789ab"), Some(Scope::Admin));
        for wrong in [
            "",
            "reader-012345678",
            "reader-0123456789 ",
            "READER-0123456789",
        ] {
            assert_eq!(tokens.scope_of(wrong), None, "{wrong:?}");
        }
        assert!(!format!("{tokens:?}").contains("reader"));
    }
}
