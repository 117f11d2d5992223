//! The change-detection engine and the scheduler: decides which records were CREATED, UPDATED or DELETED
//! since the last poll without losing or duplicating a change. It sees providers, stores, notifiers and time
//! only through the ports of `oc-model`.
