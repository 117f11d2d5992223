//! Sage's OAuth 2.0 authorization-code grant: single-use codes (`GB/...`, 60 s), access tokens (default 300 s),
//! rotating refresh tokens (31 days; a used one answers `invalid_grant`), revocation.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use rand::{Rng, SeedableRng, distributions::Alphanumeric, rngs::StdRng};
use serde::{Deserialize, Serialize};

use crate::config::AppRegistration;
use crate::store::USER_ID;

/// How long an authorization code lives.
pub(crate) const CODE_TTL_SECONDS: i64 = 60;
/// How long a refresh token lives (31 days).
pub(crate) const REFRESH_TTL_SECONDS: i64 = 2_678_400;
/// Access tokens are long, as Sage's are (about 1.5 KB), so that clients store them properly.
const ACCESS_TOKEN_LEN: usize = 1_500;

/// The token endpoint's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenResponse {
    /// The bearer token for `/v3.1`.
    pub access_token: String,
    /// `full_access` or `readonly`.
    pub scope: String,
    /// `bearer`.
    pub token_type: String,
    /// Seconds the access token lives.
    pub expires_in: i64,
    /// The next refresh token (the one used to get this answer is spent).
    pub refresh_token: String,
    /// Seconds the refresh token lives.
    pub refresh_token_expires_in: i64,
    /// The user who authorized.
    pub requested_by_id: String,
}

/// An OAuth error of the token endpoint: `{"error": code}` with a status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenError {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnsupportedGrantType,
}

impl TokenError {
    pub(crate) fn code(self) -> &'static str {
        match self {
            TokenError::InvalidRequest => "invalid_request",
            TokenError::InvalidClient => "invalid_client",
            TokenError::InvalidGrant => "invalid_grant",
            TokenError::UnsupportedGrantType => "unsupported_grant_type",
        }
    }

    pub(crate) fn status(self) -> u16 {
        match self {
            TokenError::InvalidClient => 401,
            _ => 400,
        }
    }
}

/// Why an authorization request cannot proceed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AuthorizeError {
    /// Shown as a page: the redirect URI cannot be trusted.
    Page(&'static str, String),
    /// Sent back to the (trusted) redirect URI as `error=`.
    Redirect(&'static str),
}

/// A checked authorization request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Authorize {
    pub(crate) client_id: String,
    pub(crate) redirect_uri: String,
    pub(crate) scope: String,
    pub(crate) state: Option<String>,
}

#[derive(Debug)]
struct Code {
    client_id: String,
    redirect_uri: String,
    scope: String,
    expires_at: DateTime<Utc>,
}

#[derive(Debug)]
struct Grant {
    client_id: String,
    scope: String,
    revoked: bool,
}

#[derive(Debug)]
struct Access {
    grant: usize,
    expires_at: DateTime<Utc>,
}

#[derive(Debug)]
struct Refresh {
    grant: usize,
    expires_at: DateTime<Utc>,
    used: bool,
}

/// What a valid access token grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Granted {
    pub(crate) client_id: String,
    pub(crate) read_only: bool,
}

/// Apps, codes and tokens.
#[derive(Debug)]
pub(crate) struct OAuth {
    apps: HashMap<String, AppRegistration>,
    codes: HashMap<String, Code>,
    grants: Vec<Grant>,
    access: HashMap<String, Access>,
    refresh: HashMap<String, Refresh>,
    token_ttl: chrono::Duration,
    rng: StdRng,
}

fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
}

impl OAuth {
    pub(crate) fn new(apps: &[AppRegistration], token_ttl: std::time::Duration) -> Self {
        let mut o = OAuth {
            apps: HashMap::new(),
            codes: HashMap::new(),
            grants: Vec::new(),
            access: HashMap::new(),
            refresh: HashMap::new(),
            token_ttl: chrono::Duration::from_std(token_ttl).unwrap_or(chrono::Duration::seconds(300)),
            rng: StdRng::from_entropy(),
        };
        for app in apps {
            o.register(app.clone());
        }
        o
    }

    /// Adds or replaces an app.
    pub(crate) fn register(&mut self, app: AppRegistration) {
        self.apps.insert(app.client_id.clone(), app);
    }

    fn random(&mut self, len: usize) -> String {
        (&mut self.rng).sample_iter(&Alphanumeric).take(len).map(char::from).collect()
    }

    /// Checks `GET /oauth2/auth/central`'s parameters.
    pub(crate) fn check_authorize(&self, pairs: &[(String, String)]) -> Result<Authorize, AuthorizeError> {
        let client_id = param(pairs, "client_id")
            .ok_or_else(|| AuthorizeError::Page("invalid_request", "client_id is missing".into()))?;
        let app = self
            .apps
            .get(client_id)
            .ok_or_else(|| AuthorizeError::Page("invalid_client", format!("unknown client_id {client_id:?}")))?;
        let redirect_uri = param(pairs, "redirect_uri")
            .ok_or_else(|| AuthorizeError::Page("invalid_request", "redirect_uri is missing".into()))?;
        if redirect_uri != app.redirect_uri {
            return Err(AuthorizeError::Page(
                "redirect_uri_mismatch",
                format!("redirect_uri {redirect_uri:?} is not the one registered for this client"),
            ));
        }
        if param(pairs, "response_type") != Some("code") {
            return Err(AuthorizeError::Redirect("unsupported_response_type"));
        }
        let scope = param(pairs, "scope").unwrap_or("full_access");
        if !matches!(scope, "full_access" | "readonly") {
            return Err(AuthorizeError::Redirect("invalid_scope"));
        }
        Ok(Authorize {
            client_id: client_id.to_owned(),
            redirect_uri: redirect_uri.to_owned(),
            scope: scope.to_owned(),
            state: param(pairs, "state").map(str::to_owned),
        })
    }

    /// Issues a single-use code (with its region prefix) for an approved request.
    pub(crate) fn issue_code(&mut self, a: &Authorize, now: DateTime<Utc>) -> String {
        let code = format!("GB/{}", self.random(40));
        self.codes.insert(
            code.clone(),
            Code {
                client_id: a.client_id.clone(),
                redirect_uri: a.redirect_uri.clone(),
                scope: a.scope.clone(),
                expires_at: now + chrono::Duration::seconds(CODE_TTL_SECONDS),
            },
        );
        code
    }

    fn client(&self, pairs: &[(String, String)]) -> Result<&AppRegistration, TokenError> {
        let id = param(pairs, "client_id").ok_or(TokenError::InvalidClient)?;
        let app = self.apps.get(id).ok_or(TokenError::InvalidClient)?;
        if param(pairs, "client_secret") != Some(app.client_secret.as_str()) {
            return Err(TokenError::InvalidClient);
        }
        Ok(app)
    }

    /// `POST /token`.
    pub(crate) fn token(
        &mut self,
        pairs: &[(String, String)],
        now: DateTime<Utc>,
    ) -> Result<TokenResponse, TokenError> {
        let grant_type = param(pairs, "grant_type").ok_or(TokenError::InvalidRequest)?;
        if !matches!(grant_type, "authorization_code" | "refresh_token") {
            return Err(TokenError::UnsupportedGrantType);
        }
        let client_id = self.client(pairs)?.client_id.clone();
        if grant_type == "authorization_code" {
            let code = param(pairs, "code").ok_or(TokenError::InvalidRequest)?;
            let redirect_uri = param(pairs, "redirect_uri").ok_or(TokenError::InvalidRequest)?;
            // A code is spent by any attempt to use it.
            let c = self.codes.remove(code).ok_or(TokenError::InvalidGrant)?;
            if c.client_id != client_id || c.redirect_uri != redirect_uri || c.expires_at <= now {
                return Err(TokenError::InvalidGrant);
            }
            self.grants.push(Grant { client_id, scope: c.scope, revoked: false });
            Ok(self.issue_tokens(self.grants.len() - 1, now))
        } else {
            let token = param(pairs, "refresh_token").ok_or(TokenError::InvalidRequest)?;
            let r = self.refresh.get_mut(token).ok_or(TokenError::InvalidGrant)?;
            let grant = r.grant;
            let g = &self.grants[grant];
            if r.used || r.expires_at <= now || g.revoked || g.client_id != client_id {
                return Err(TokenError::InvalidGrant);
            }
            r.used = true;
            Ok(self.issue_tokens(grant, now))
        }
    }

    fn issue_tokens(&mut self, grant: usize, now: DateTime<Utc>) -> TokenResponse {
        let access_token = self.random(ACCESS_TOKEN_LEN);
        let refresh_token = self.random(64);
        self.access.insert(access_token.clone(), Access { grant, expires_at: now + self.token_ttl });
        let refresh_ttl = chrono::Duration::seconds(REFRESH_TTL_SECONDS);
        self.refresh.insert(refresh_token.clone(), Refresh { grant, expires_at: now + refresh_ttl, used: false });
        TokenResponse {
            access_token,
            scope: self.grants[grant].scope.clone(),
            token_type: "bearer".into(),
            expires_in: self.token_ttl.num_seconds(),
            refresh_token,
            refresh_token_expires_in: REFRESH_TTL_SECONDS,
            requested_by_id: USER_ID.into(),
        }
    }

    /// Tokens for an app without the browser dance (tests, the demo).
    pub(crate) fn grant_directly(&mut self, client_id: &str, now: DateTime<Utc>) -> Option<TokenResponse> {
        self.apps.get(client_id)?;
        self.grants.push(Grant { client_id: client_id.to_owned(), scope: "full_access".into(), revoked: false });
        Some(self.issue_tokens(self.grants.len() - 1, now))
    }

    /// `POST /revoke`: revokes the grant the token (access or refresh) belongs to.
    pub(crate) fn revoke(&mut self, pairs: &[(String, String)]) -> Result<(), TokenError> {
        let client_id = self.client(pairs)?.client_id.clone();
        let token = param(pairs, "token").ok_or(TokenError::InvalidRequest)?;
        let grant = self.refresh.get(token).map(|r| r.grant).or_else(|| self.access.get(token).map(|a| a.grant));
        if let Some(g) = grant.and_then(|g| self.grants.get_mut(g))
            && g.client_id == client_id
        {
            g.revoked = true;
        }
        Ok(())
    }

    /// What a bearer token grants now, if anything.
    pub(crate) fn check(&self, token: &str, now: DateTime<Utc>) -> Option<Granted> {
        let a = self.access.get(token)?;
        let g = self.grants.get(a.grant)?;
        (a.expires_at > now && !g.revoked)
            .then(|| Granted { client_id: g.client_id.clone(), read_only: g.scope == "readonly" })
    }

    /// Expires every access token issued so far (refresh tokens stay valid).
    pub(crate) fn expire_access_tokens(&mut self, now: DateTime<Utc>) {
        for a in self.access.values_mut() {
            a.expires_at = a.expires_at.min(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().expect("t")
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn oauth() -> OAuth {
        OAuth::new(&[AppRegistration::new("id", "secret", "http://cb.test/cb")], std::time::Duration::from_secs(300))
    }

    fn authorize(o: &OAuth, extra: &[(&str, &str)]) -> Result<Authorize, AuthorizeError> {
        let mut p = pairs(&[("client_id", "id"), ("redirect_uri", "http://cb.test/cb"), ("response_type", "code")]);
        p.extend(pairs(extra));
        o.check_authorize(&p)
    }

    fn exchange(o: &mut OAuth, code: &str, secret: &str, now: &str) -> Result<TokenResponse, TokenError> {
        o.token(
            &pairs(&[
                ("grant_type", "authorization_code"),
                ("client_id", "id"),
                ("client_secret", secret),
                ("code", code),
                ("redirect_uri", "http://cb.test/cb"),
            ]),
            t(now),
        )
    }

    fn refresh(o: &mut OAuth, token: &str, now: &str) -> Result<TokenResponse, TokenError> {
        o.token(
            &pairs(&[
                ("grant_type", "refresh_token"),
                ("client_id", "id"),
                ("client_secret", "secret"),
                ("refresh_token", token),
            ]),
            t(now),
        )
    }

    #[test]
    fn authorize_checks_client_redirect_type_and_scope() {
        let o = oauth();
        let a = authorize(&o, &[("state", "s1")]).expect("ok");
        assert_eq!((a.scope.as_str(), a.state.as_deref()), ("full_access", Some("s1")));
        assert!(matches!(
            o.check_authorize(&pairs(&[("client_id", "nope"), ("redirect_uri", "http://cb.test/cb")])),
            Err(AuthorizeError::Page("invalid_client", _))
        ));
        assert!(matches!(
            o.check_authorize(&pairs(&[("client_id", "id"), ("redirect_uri", "http://cb.test/other")])),
            Err(AuthorizeError::Page("redirect_uri_mismatch", _))
        ));
        let mut p = pairs(&[("client_id", "id"), ("redirect_uri", "http://cb.test/cb"), ("response_type", "token")]);
        assert_eq!(o.check_authorize(&p), Err(AuthorizeError::Redirect("unsupported_response_type")));
        p[2].1 = "code".into();
        p.push(("scope".into(), "everything".into()));
        assert_eq!(o.check_authorize(&p), Err(AuthorizeError::Redirect("invalid_scope")));
    }

    #[test]
    fn codes_are_single_use_and_live_60_seconds() {
        let mut o = oauth();
        let a = authorize(&o, &[]).expect("ok");
        let code = o.issue_code(&a, t("2024-01-01T00:00:00Z"));
        assert!(code.starts_with("GB/"));
        let tokens = exchange(&mut o, &code, "secret", "2024-01-01T00:00:59Z").expect("exchange");
        assert_eq!((tokens.expires_in, tokens.token_type.as_str()), (300, "bearer"));
        assert_eq!(tokens.refresh_token_expires_in, 2_678_400);
        assert!(tokens.access_token.len() > 1000);
        assert_eq!(exchange(&mut o, &code, "secret", "2024-01-01T00:00:59Z"), Err(TokenError::InvalidGrant));
        let late = o.issue_code(&a, t("2024-01-01T00:00:00Z"));
        assert_eq!(exchange(&mut o, &late, "secret", "2024-01-01T00:01:00Z"), Err(TokenError::InvalidGrant));
        let code = o.issue_code(&a, t("2024-01-01T00:00:00Z"));
        assert_eq!(exchange(&mut o, &code, "wrong", "2024-01-01T00:00:01Z"), Err(TokenError::InvalidClient));
        assert_eq!(TokenError::InvalidClient.status(), 401);
    }

    #[test]
    fn refresh_tokens_rotate_and_access_tokens_expire() {
        let mut o = oauth();
        let first = o.grant_directly("id", t("2024-01-01T00:00:00Z")).expect("grant");
        assert!(o.check(&first.access_token, t("2024-01-01T00:04:59Z")).is_some());
        assert!(o.check(&first.access_token, t("2024-01-01T00:05:00Z")).is_none());
        let second = refresh(&mut o, &first.refresh_token, "2024-01-01T00:05:00Z").expect("refresh");
        assert_ne!(second.refresh_token, first.refresh_token);
        assert_eq!(refresh(&mut o, &first.refresh_token, "2024-01-01T00:05:01Z"), Err(TokenError::InvalidGrant));
        assert!(o.check(&second.access_token, t("2024-01-01T00:05:01Z")).is_some());
        o.expire_access_tokens(t("2024-01-01T00:05:02Z"));
        assert!(o.check(&second.access_token, t("2024-01-01T00:05:02Z")).is_none());
        let third = refresh(&mut o, &second.refresh_token, "2024-01-01T00:06:00Z").expect("refresh");
        assert_eq!(refresh(&mut o, &third.refresh_token, "2024-02-01T00:06:01Z"), Err(TokenError::InvalidGrant));
    }

    #[test]
    fn revoke_ends_the_grant() {
        let mut o = oauth();
        let tokens = o.grant_directly("id", t("2024-01-01T00:00:00Z")).expect("grant");
        let creds = [("client_id", "id"), ("client_secret", "secret")];
        let mut p = pairs(&creds);
        p.push(("token".into(), tokens.refresh_token.clone()));
        o.revoke(&p).expect("revoke");
        assert!(o.check(&tokens.access_token, t("2024-01-01T00:00:01Z")).is_none());
        assert_eq!(refresh(&mut o, &tokens.refresh_token, "2024-01-01T00:00:02Z"), Err(TokenError::InvalidGrant));
        let mut bad = pairs(&[("client_id", "id"), ("client_secret", "x")]);
        bad.push(("token".into(), "t".into()));
        assert_eq!(o.revoke(&bad), Err(TokenError::InvalidClient));
    }
}
