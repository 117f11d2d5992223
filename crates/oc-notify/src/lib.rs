//! Notifications in the Open Connectors `message` shape: built from the outbox, signed
//! (`Elements-Webhook-Signature` and Standard Webhooks), delivered at least once with retries. It implements
//! the notifier port of `oc-model`.
