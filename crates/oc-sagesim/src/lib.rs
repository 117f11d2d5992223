//! A Sage Accounting v3.1 simulator (OAuth, businesses, resources, list semantics, rate limits and fault
//! injection) for `ocpoll demo` and the end-to-end tests.
