//! Accounts: users and their passwords, tokens, who is calling (auth), what they may do
//! (authz), and the throttles that protect logins.

pub mod auth;
pub mod authz;
pub mod cidr;
pub mod password;
pub mod sessions;
pub mod throttle;
pub mod tokens;
pub mod users;
