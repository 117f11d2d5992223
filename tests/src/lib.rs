//! End-to-end tests of ocpoll (package `oc-tests`): they drive the real binary or app against real databases
//! and the Sage simulator. Fixtures live in `fixtures/`.
