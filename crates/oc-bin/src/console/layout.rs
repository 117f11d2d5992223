//! The page shell (head, header with sign-out, `<main>`) and small pieces of HTML the pages share.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, html};

use super::assets;
use super::session::{CSRF_FIELD, Signed};

/// A page: its title and what the shell needs to know of it.
pub(super) struct Page<'a> {
    title: &'a str,
    canonical: Option<String>,
}

impl<'a> Page<'a> {
    /// A page titled `title` (the tab's title: "… — ocpoll console").
    pub(super) fn new(title: &'a str) -> Page<'a> {
        Page { title, canonical: None }
    }

    /// The address the page should show in the address bar (the script replaces the current one with it: the
    /// OAuth callback's page becomes the instance's).
    pub(super) fn canonical(mut self, path: String) -> Page<'a> {
        self.canonical = Some(path);
        self
    }

    /// The whole document around `body`. A signed-in page carries the session's anti-forgery token for the
    /// script, and the sign-out button.
    pub(super) fn render(self, signed: Option<&Signed>, body: Markup) -> Markup {
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    @if let Some(s) = signed { meta name="csrf-token" content=(s.csrf); }
                    @if let Some(c) = &self.canonical { meta name="ocpoll-canonical" content=(c); }
                    title { (self.title) " — ocpoll console" }
                    link rel="stylesheet" href=(assets::css_path());
                    script src=(assets::js_path()) defer {}
                }
                body {
                    a.skip href="#main" { "Skip to content" }
                    header.top {
                        a.brand href="/ui/" { "ocpoll" }
                        @if let Some(s) = signed {
                            nav aria-label="Main" {
                                a href="/ui/" { "Instances" }
                            }
                            form.sign-out method="post" action="/ui/sign-out" {
                                (csrf_input(s))
                                button type="submit" { "Sign out" }
                            }
                        }
                    }
                    main #main tabindex="-1" { (body) }
                }
            }
        }
    }
}

/// The hidden anti-forgery field of a form.
pub(super) fn csrf_input(signed: &Signed) -> Markup {
    html! { input type="hidden" name=(CSRF_FIELD) value=(signed.csrf); }
}

/// A page as a response (200, HTML).
pub(super) fn html(markup: Markup) -> Response {
    let mut response = markup.into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    response
}

/// A page saying what went wrong, in an alert.
pub(super) fn error_page(title: &str, message: &str) -> Markup {
    let body = html! {
        h1 { (title) }
        div.alert role="alert" {
            @for line in message.lines() { p { (line) } }
        }
        p { a href="/ui/" { "Back to the instances" } }
    };
    Page::new(title).render(None, body)
}

/// A date as the console shows it (UTC, to the second), in a `<time>` element.
pub(super) fn time(at: DateTime<Utc>) -> Markup {
    html! { time datetime=(at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)) { (when(at)) } }
}

/// `2026-03-21 12:34:56 UTC`.
pub(super) fn when(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// A JSON value pretty-printed, for a `<pre>`.
pub(super) fn pretty(value: &serde_json::Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}
