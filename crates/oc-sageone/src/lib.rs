//! The Sage Business Cloud Accounting v3.1 provider: the hub resource table, the CEQL `where` parser and
//! translator, the OAuth client with rotating refresh tokens, paging and rate limits. It implements the
//! provider port of `oc-model`.
