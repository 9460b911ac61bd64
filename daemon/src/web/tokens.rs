//! "My tokens" (`/-/web/tokens`): the signed-in user's tokens, a form to create one (name,
//! read-only, CIDR allow-list, expiry in days: what `registry token create` offers) and a
//! revoke button per token. Every form carries the session's CSRF token. A new token's
//! secret is on the answer to the creating post only: it is stored as a hash and cannot be
//! shown again.

use maud::{html, Markup};
use registry_core::accounts::sessions::WebSession;
use registry_core::accounts::tokens::TokenRecord;

use super::layout;
use super::listing::day_of;

/// What the create form's answer adds to the page.
pub enum Notice<'a> {
    None,
    /// The secret of the token just created.
    Created(&'a str),
    /// The create form was refused: why.
    Refused(&'a str),
}

pub fn page(
    session: &WebSession,
    tokens: &[TokenRecord],
    total: u64,
    notice: Notice<'_>,
) -> Markup {
    layout(
        "Tokens",
        Some(session),
        html! {
            h1 { "Access tokens" }
            @match notice {
                Notice::Created(secret) => {
                    section.notice.created aria-labelledby="new-token-heading" {
                        h2 #new-token-heading { "Your new token" }
                        p { "Copy it now: it is shown only once and cannot be recovered." }
                        pre { code #new-token { (secret) } }
                        button.secondary type="button" data-copy="new-token" { "Copy token" }
                    }
                }
                Notice::Refused(message) => {
                    p.error role="alert" { (message) }
                }
                Notice::None => {}
            }
            section aria-labelledby="list-heading" {
                h2 #list-heading { "Your tokens (" (total) ")" }
                @if tokens.is_empty() {
                    p.muted { "You have no tokens." }
                } @else {
                    div.table-scroll {
                        table.tokens {
                            thead {
                                tr {
                                    th scope="col" { "Token" }
                                    th scope="col" { "Name" }
                                    th scope="col" { "Access" }
                                    th scope="col" { "Networks" }
                                    th scope="col" { "Created" }
                                    th scope="col" { "Expires" }
                                    th scope="col" { "Last used" }
                                    th scope="col" { span.visually-hidden { "Actions" } }
                                }
                            }
                            tbody {
                                @for token in tokens {
                                    tr {
                                        td { code { (token.display) "…" } }
                                        td { (token.name.as_deref().or(token.description.as_deref()).unwrap_or("")) }
                                        td { @if token.readonly { "read-only" } @else { "read and publish" } }
                                        td { @if token.cidr_whitelist.is_empty() { "any" } @else { (token.cidr_whitelist.join(", ")) } }
                                        td { (day_of(&token.created_at)) }
                                        td { (token.expires_at.as_deref().map(day_of).unwrap_or("never")) }
                                        td { (token.last_used_at.as_deref().map(day_of).unwrap_or("never")) }
                                        td {
                                            form.inline action={ "/-/web/tokens/" (token.key) "/revoke" } method="post" {
                                                input type="hidden" name="csrf" value=(session.csrf);
                                                button.danger type="submit" aria-label={ "Revoke token " (token.display) "…" } { "Revoke" }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            section aria-labelledby="create-heading" {
                h2 #create-heading { "Create a token" }
                form.stacked action="/-/web/tokens" method="post" {
                    input type="hidden" name="csrf" value=(session.csrf);
                    label for="token-name" { "Name " span.muted { "(optional)" } }
                    input #token-name type="text" name="name" maxlength="100";
                    div.check {
                        input #token-readonly type="checkbox" name="readonly" value="on";
                        label for="token-readonly" { "Read-only (can install, cannot publish)" }
                    }
                    label for="token-cidr" { "Allowed networks " span.muted { "(optional; IPv4 CIDR, comma-separated)" } }
                    input #token-cidr type="text" name="cidr" placeholder="10.0.0.0/8, 192.168.1.7/32" aria-describedby="cidr-help";
                    p #cidr-help.muted { "Empty: the token works from anywhere." }
                    label for="token-expires" { "Expires after (days) " span.muted { "(optional)" } }
                    input #token-expires type="number" name="expires_days" min="1" max="3650" inputmode="numeric";
                    p { button type="submit" { "Create token" } }
                }
            }
        },
    )
}
