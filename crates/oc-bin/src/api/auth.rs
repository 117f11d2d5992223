//! Authentication of API callers: `Authorization: User <u>, Organization <o>[, Element <t>]` (parts in any order).
//!
//! Missing or wrong credentials answer 401; an instance of another organization or another instance's `Element`
//! token answers 404, never 403, so that nobody learns what exists elsewhere.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use oc_model::ids::InstanceId;
use oc_model::ports::Principal;

use super::AppState;
use super::error::ApiError;

/// The parts of an `Authorization` header.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// `User <secret>`.
    pub user: Option<String>,
    /// `Organization <secret>`.
    pub organization: Option<String>,
    /// `Element <instance token>`.
    pub element: Option<String>,
}

/// Parses `User <u>, Organization <o>, Element <t>`: parts in any order, separated by commas, optional spaces,
/// kinds case-insensitive.
pub fn parse_authorization(header: &str) -> Result<Credentials, String> {
    let mut c = Credentials::default();
    for part in header.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (kind, value) = part.split_once(char::is_whitespace).ok_or_else(|| format!("{part:?} has no value"))?;
        let value = value.trim();
        if value.is_empty() {
            return Err(format!("{kind} has no value"));
        }
        let slot = match kind.to_ascii_lowercase().as_str() {
            "user" => &mut c.user,
            "organization" => &mut c.organization,
            "element" => &mut c.element,
            other => return Err(format!("unknown credential kind {other:?}; expected User, Organization or Element")),
        };
        if slot.replace(value.to_string()).is_some() {
            return Err(format!("{kind} given twice"));
        }
    }
    Ok(c)
}

/// An authenticated caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    /// Whose request this is.
    pub principal: Principal,
    /// The instance of the `Element` token, when one was given.
    pub instance: Option<InstanceId>,
}

impl Caller {
    /// The instance an instance call is about: the `Element` token's.
    pub fn element_instance(&self) -> Result<InstanceId, ApiError> {
        self.instance.ok_or_else(|| {
            ApiError::Unauthorized(
                "this call needs an Element token: Authorization: User <u>, Organization <o>, Element <t>".into(),
            )
        })
    }

    /// Checks that an `Element` token, when given, belongs to `id` (404 otherwise).
    pub fn may_address(&self, id: InstanceId) -> Result<(), ApiError> {
        match self.instance {
            Some(own) if own != id => Err(ApiError::NotFound(format!("instance {id} not found"))),
            _ => Ok(()),
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or_else(|| ApiError::Unauthorized("missing Authorization header: User <u>, Organization <o>".into()))?
            .to_str()
            .map_err(|_| ApiError::Unauthorized("the Authorization header is not readable text".into()))?;
        let creds = parse_authorization(header)
            .map_err(|e| ApiError::Unauthorized(format!("bad Authorization header: {e}")))?;
        authenticate(state, &creds).await
    }
}

/// Checks credentials against the store.
pub async fn authenticate(state: &AppState, creds: &Credentials) -> Result<Caller, ApiError> {
    let wrong = || ApiError::Unauthorized("invalid credentials".into());
    let by_element = match &creds.element {
        Some(token) => Some(state.store.authenticate_instance(token).await?.ok_or_else(wrong)?),
        None => None,
    };
    match (&creds.user, &creds.organization, by_element) {
        (Some(user), Some(org), element) => {
            let principal = state.store.authenticate(user, org).await?.ok_or_else(wrong)?;
            match element {
                Some((owner, _)) if owner.org_id != principal.org_id => Err(wrong()),
                Some((_, id)) => Ok(Caller { principal, instance: Some(id) }),
                None => Ok(Caller { principal, instance: None }),
            }
        }
        (user, None, Some((owner, id))) => {
            if let Some(user) = user {
                let known = state.store.authenticate_user(user).await?;
                if known.is_none_or(|p| p.org_id != owner.org_id) {
                    return Err(wrong());
                }
            }
            Ok(Caller { principal: owner, instance: Some(id) })
        }
        (_, _, None) => Err(ApiError::Unauthorized(
            "missing credentials: Authorization: User <u>, Organization <o> (plus Element <t> for instance calls)"
                .into(),
        )),
        (None, Some(_), Some(_)) => Err(ApiError::Unauthorized("an Organization secret needs a User secret".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Parts<'a> = (Option<&'a str>, Option<&'a str>, Option<&'a str>);

    fn check(header: &str, expected: Result<Parts<'_>, &str>) {
        let got = parse_authorization(header);
        match (got, expected) {
            (Ok(c), Ok((u, o, e))) => {
                assert_eq!((c.user.as_deref(), c.organization.as_deref(), c.element.as_deref()), (u, o, e), "{header}")
            }
            (Err(m), Err(want)) => assert!(m.contains(want), "{header}: {m}"),
            (got, want) => panic!("{header}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn header_forms() {
        check("User u1, Organization o1", Ok((Some("u1"), Some("o1"), None)));
        check("Organization o1,User u1,Element e1", Ok((Some("u1"), Some("o1"), Some("e1"))));
        check("User u1, Element e1", Ok((Some("u1"), None, Some("e1"))));
        check("  user u1 ,  ORGANIZATION   o1  ", Ok((Some("u1"), Some("o1"), None)));
        check("Bearer x", Err("unknown credential kind"));
        check("User", Err("has no value"));
        check("User a, User b", Err("given twice"));
    }
}
