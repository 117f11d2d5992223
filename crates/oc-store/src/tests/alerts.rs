//! Operational alerts (issue 17, item 5): each raised once per transition in the transaction of its fact, with
//! the body the receiver gets; claimed under leases, recorded, listed, redelivered, pruned.

use std::collections::HashSet;

use super::prelude::*;
use oc_model::ports::{
    AlertStatus, AlertStep, AlertStore, AlertType, NewAttempt, NextStep, PollFailure, PollStatus, StoreError,
};

use super::{TTL, at, commit, customers, emit, event, on_both, open, outcome, setup, t0};
use crate::Backend;

fn attempt(now: chrono::DateTime<chrono::Utc>, status: u16) -> NewAttempt {
    NewAttempt {
        at: now,
        status_code: Some(status),
        latency_ms: 3,
        error: (status >= 300).then(|| format!("the receiver answered {status}")),
        response_excerpt: String::new(),
    }
}

async fn types_of(s: &crate::SqlStore, org: i64, instance: i64) -> Vec<AlertType> {
    let page = s.list_alerts(org, instance, None, 100, 0).await.unwrap().expect("the instance");
    assert_eq!(page.total as usize, page.items.len());
    page.items.iter().rev().map(|a| a.alert_type).collect()
}

async fn an_invalid_instance_is_reported_once(b: Backend) {
    let Some(t) = open(b).await else { return };
    let s = t.store();
    let (owner, inst) = setup(&s, customers()).await;
    assert!(types_of(&s, owner.org_id, inst.id).await.is_empty());
    s.mark_invalid(inst.id, "the grant was revoked: invalid_grant").await.unwrap();
    s.mark_invalid(inst.id, "the grant was revoked: invalid_grant").await.unwrap();
    assert_eq!(types_of(&s, owner.org_id, inst.id).await, [AlertType::InstanceInvalid], "once per transition");

    let claims = s.claim_alerts("n1", at(1) + chrono::Duration::days(3650), 10, TTL).await.unwrap();
    assert_eq!(claims.len(), 1);
    let c = &claims[0];
    assert_eq!(c.instance.as_ref().map(|i| i.id), Some(inst.id));
    let body = &c.alert.body;
    assert_eq!(body["type"], "instance.invalid");
    assert_eq!(body["id"], c.alert.id.to_string());
    assert_eq!(body["instanceId"], inst.id);
    assert_eq!(body["instanceName"], inst.name.as_str());
    assert_eq!(body["elementKey"], inst.element_key.as_str());
    assert_eq!(body["reason"], "the grant was revoked: invalid_grant");
    assert!(body["at"].as_str().is_some_and(|a| a.ends_with('Z')), "{body}");
    // leased: not handed out twice
    assert!(s.claim_alerts("n2", at(1) + chrono::Duration::days(3650), 10, TTL).await.unwrap().is_empty());

    // re-authorized, then revoked again: a new alert
    let tokens = oc_model::ports::TokenSet {
        access_token: oc_model::Secret::new("new-access"),
        refresh_token: oc_model::Secret::new("new-refresh"),
        expires_at: at(3600),
        refresh_expires_at: None,
        scope: None,
    };
    let update = oc_model::ports::InstanceUpdate {
        authorization: Some((tokens, Default::default())),
        now: at(1),
        ..Default::default()
    };
    assert!(s.update_instance(owner.org_id, inst.id, &update).await.unwrap().valid);
    s.mark_invalid(inst.id, "revoked again").await.unwrap();
    assert_eq!(types_of(&s, owner.org_id, inst.id).await, [AlertType::InstanceInvalid; 2]);
}

async fn a_410_is_reported_once_until_notifications_are_on_again(b: Backend) {
    let Some(t) = open(b).await else { return };
    let s = t.store();
    let (owner, inst) = setup(&s, customers()).await;
    s.set_notifications_disabled(inst.id, Some("the callback answered 410 gone")).await.unwrap();
    s.set_notifications_disabled(inst.id, Some("the callback answered 410 gone")).await.unwrap();
    assert_eq!(types_of(&s, owner.org_id, inst.id).await, [AlertType::NotificationsDisabled]);
    s.set_notifications_disabled(inst.id, None).await.unwrap();
    assert_eq!(types_of(&s, owner.org_id, inst.id).await.len(), 1, "switching on is no alert");
    s.set_notifications_disabled(inst.id, Some("410 again")).await.unwrap();
    let page = s.list_alerts(owner.org_id, inst.id, None, 10, 0).await.unwrap().unwrap();
    assert_eq!(page.items.len(), 2);
    assert_eq!(page.items[0].body["reason"], "410 again", "newest first");
    // another organization sees nothing
    assert_eq!(s.list_alerts(owner.org_id + 1000, inst.id, None, 10, 0).await.unwrap(), None);
}

async fn a_notification_failed_for_good_is_reported_with_its_events(b: Backend) {
    let Some(t) = open(b).await else { return };
    let s = t.store();
    let (owner, inst) = setup(&s, customers()).await;
    let events = vec![event(inst.id, "customers", "a", 1), event(inst.id, "customers", "b", 2)];
    emit(&s, inst.id, "customers", events.clone(), t0()).await;
    assert_eq!(s.batch_events(at(1), 10).await.unwrap(), 1);
    // a failure with a retry left is no alert
    let c = s.claim_deliveries("d", at(2), 10, TTL).await.unwrap().remove(0);
    s.record_attempt(c.notification.id, &c.lease, &attempt(at(2), 500), NextStep::RetryAt(at(3))).await.unwrap();
    assert!(types_of(&s, owner.org_id, inst.id).await.is_empty());
    // the last one is
    let c = s.claim_deliveries("d", at(3), 10, TTL).await.unwrap().remove(0);
    s.record_attempt(c.notification.id, &c.lease, &attempt(at(3), 503), NextStep::Failed).await.unwrap();
    let page = s.list_alerts(owner.org_id, inst.id, Some(AlertType::NotificationFailed), 10, 0).await.unwrap().unwrap();
    assert_eq!(page.items.len(), 1);
    let body = &page.items[0].body;
    assert_eq!(body["notificationId"], c.notification.id.to_string());
    assert_eq!(body["objectType"], "customers");
    assert_eq!(body["attempts"], 2);
    let ids: Vec<&str> = body["eventIds"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(ids, events.iter().map(|e| e.event_id.to_string()).collect::<Vec<_>>());
    assert!(body["reason"].as_str().unwrap().contains("the receiver answered 503"), "{body}");
    let other = s.list_alerts(owner.org_id, inst.id, Some(AlertType::PollingFailing), 10, 0).await.unwrap().unwrap();
    assert_eq!(other.total, 0, "the type filter");
}

async fn polling_failing_past_the_threshold_is_reported_once_per_streak(b: Backend) {
    let Some(t) = open(b).await else { return };
    let s = t.store();
    let (owner, inst) = setup(&s, customers()).await;
    let fail = |now| {
        let mut o = outcome(PollStatus::Failed, now);
        o.error = Some("provider unreachable: timeout".into());
        PollFailure { outcome: o, next_run_at: now + chrono::Duration::seconds(60) }
    };
    let threshold = crate::DEFAULT_POLLING_FAILING_AFTER.as_secs() as i64;
    // failing from t0: at 14 minutes not yet, past 15 minutes once, then not again in the same streak
    for secs in [0, threshold / 2, threshold - 60, threshold + 1, threshold + 120, threshold + 240] {
        let c = s.claim_polls("n", at(secs), 1, TTL).await.unwrap().remove(0);
        s.abandon_poll(inst.id, "customers", &c.lease, &fail(at(secs))).await.unwrap();
        let expected = usize::from(secs > threshold - 60);
        assert_eq!(types_of(&s, owner.org_id, inst.id).await.len(), expected, "after the poll at {secs} s");
    }
    let page = s.list_alerts(owner.org_id, inst.id, None, 10, 0).await.unwrap().unwrap();
    let body = &page.items[0].body;
    assert_eq!(body["type"], "polling.failing");
    assert_eq!(body["resource"], "customers");
    assert_eq!(body["consecutiveFailures"], 4);
    assert_eq!(body["failingSince"], crate::codec::time_text(at(-1)), "the start of the first failed poll");
    assert!(body["reason"].as_str().unwrap().contains("provider unreachable: timeout"), "{body}");
    // a success ends the streak; the next streak is reported again past the threshold
    let base = threshold + 400;
    let c = s.claim_polls("n", at(base), 1, TTL).await.unwrap().remove(0);
    s.commit_poll(inst.id, "customers", &c.lease, &commit(vec![], Some(at(base)), at(base))).await.unwrap();
    for secs in [base + 60, base + 60 + threshold / 2, base + 120 + threshold] {
        let c = s.claim_polls("n", at(secs), 1, TTL).await.unwrap().remove(0);
        s.abandon_poll(inst.id, "customers", &c.lease, &fail(at(secs))).await.unwrap();
    }
    assert_eq!(types_of(&s, owner.org_id, inst.id).await, [AlertType::PollingFailing; 2]);
}

async fn alerts_are_leased_recorded_and_redelivered(b: Backend) {
    let Some(t) = open(b).await else { return };
    let s = t.store();
    let (owner, inst) = setup(&s, customers()).await;
    s.mark_invalid(inst.id, "revoked").await.unwrap();
    s.set_notifications_disabled(inst.id, Some("410")).await.unwrap();
    let far = t0() + chrono::Duration::days(3650);
    let claims = s.claim_alerts("n1", far, 10, TTL).await.unwrap();
    assert_eq!(
        claims.iter().map(|c| c.alert.alert_type).collect::<Vec<_>>(),
        [AlertType::InstanceInvalid, AlertType::NotificationsDisabled]
    );
    let (first, second) = (&claims[0], &claims[1]);
    // a failure with a retry, then delivered
    let step = AlertStep::Attempted {
        target: "instance",
        attempt: attempt(far, 500),
        next: NextStep::RetryAt(far + chrono::Duration::seconds(30)),
    };
    s.record_alert(first.alert.id, &first.lease, &step).await.unwrap();
    assert!(
        matches!(s.record_alert(first.alert.id, &first.lease, &step).await, Err(StoreError::LeaseLost(_))),
        "the lease was released"
    );
    s.record_alert(second.alert.id, &second.lease, &AlertStep::Unrouted { at: far }).await.unwrap();
    assert!(s.claim_alerts("n1", far + chrono::Duration::seconds(29), 10, TTL).await.unwrap().is_empty());
    let again = s.claim_alerts("n1", far + chrono::Duration::seconds(30), 10, TTL).await.unwrap();
    assert_eq!(again.len(), 1, "the retry is due, the unrouted one is not");
    let ok = AlertStep::Attempted { target: "server", attempt: attempt(far, 204), next: NextStep::Delivered };
    s.record_alert(again[0].alert.id, &again[0].lease, &ok).await.unwrap();
    let (record, attempts) = s.alert(owner.org_id, first.alert.id).await.unwrap().unwrap();
    assert_eq!((record.status, record.attempts, record.target.as_deref()), (AlertStatus::Delivered, 2, Some("server")));
    assert_eq!(attempts.iter().map(|a| a.attempt.status_code).collect::<Vec<_>>(), [Some(500), Some(204)]);
    assert!(record.delivered_at.is_some() && record.last_error.is_none());
    let (unrouted, _) = s.alert(owner.org_id, second.alert.id).await.unwrap().unwrap();
    assert_eq!(unrouted.status, AlertStatus::Unrouted);
    assert!(unrouted.last_error.unwrap().contains("--operational-webhook-url"));
    assert_eq!(s.alert(owner.org_id + 1000, first.alert.id).await.unwrap(), None, "another organization's");

    // a lapsed lease is claimed again by another node
    s.mark_invalid(inst.id, "x").await.unwrap(); // already invalid: nothing new
    s.set_notifications_disabled(inst.id, None).await.unwrap();
    s.set_notifications_disabled(inst.id, Some("410 again")).await.unwrap();
    let held = s.claim_alerts("n1", far, 10, TTL).await.unwrap();
    assert_eq!(held.len(), 1);
    let lapsed = far + TTL + chrono::Duration::seconds(1);
    let taken = s.claim_alerts("n2", lapsed, 10, TTL).await.unwrap();
    assert_eq!(taken.iter().map(|c| c.alert.id).collect::<Vec<_>>(), [held[0].alert.id]);
    let late = AlertStep::Attempted { target: "instance", attempt: attempt(lapsed, 200), next: NextStep::Delivered };
    assert!(matches!(s.record_alert(held[0].alert.id, &held[0].lease, &late).await, Err(StoreError::LeaseLost(_))));
    s.record_alert(taken[0].alert.id, &taken[0].lease, &late).await.unwrap();

    // redelivery whatever the status: the delivered and the unrouted one are due again
    for id in [first.alert.id, second.alert.id] {
        assert!(s.redeliver_alert(owner.org_id, id, lapsed).await.unwrap());
    }
    assert!(!s.redeliver_alert(owner.org_id + 1000, first.alert.id, lapsed).await.unwrap());
    let due: HashSet<_> = s.claim_alerts("n3", lapsed, 10, TTL).await.unwrap().iter().map(|c| c.alert.id).collect();
    assert_eq!(due, HashSet::from([first.alert.id, second.alert.id]));
}

async fn retention_prunes_delivered_alerts_and_those_of_deleted_instances(b: Backend) {
    let Some(t) = open(b).await else { return };
    let s = t.store();
    let (owner, inst) = setup(&s, customers()).await;
    let (other_owner, other) = setup(&s, customers()).await;
    s.mark_invalid(inst.id, "revoked").await.unwrap();
    s.set_notifications_disabled(inst.id, Some("410")).await.unwrap();
    s.mark_invalid(other.id, "revoked").await.unwrap();
    let now = chrono::Utc::now();
    let claims = s.claim_alerts("n", now, 10, TTL).await.unwrap();
    let mine: Vec<_> = claims.iter().filter(|c| c.alert.instance_id == inst.id).collect();
    let ok = AlertStep::Attempted { target: "instance", attempt: attempt(now, 200), next: NextStep::Delivered };
    s.record_alert(mine[0].alert.id, &mine[0].lease, &ok).await.unwrap();
    let failed = AlertStep::Attempted { target: "instance", attempt: attempt(now, 500), next: NextStep::Failed };
    s.record_alert(mine[1].alert.id, &mine[1].lease, &failed).await.unwrap();
    assert!(s.delete_instance(other_owner.org_id, other.id, now).await.unwrap());
    s.prune_delivered(now + chrono::Duration::hours(1)).await.unwrap();
    let left = s.list_alerts(owner.org_id, inst.id, None, 10, 0).await.unwrap().unwrap();
    assert_eq!(left.items.iter().map(|a| a.status).collect::<Vec<_>>(), [AlertStatus::Failed], "failed ones stay");
    assert!(s.claim_alerts("n", now + chrono::Duration::hours(2), 10, TTL).await.unwrap().is_empty());
}

on_both!(
    an_invalid_instance_is_reported_once,
    a_410_is_reported_once_until_notifications_are_on_again,
    a_notification_failed_for_good_is_reported_with_its_events,
    polling_failing_past_the_threshold_is_reported_once_per_streak,
    alerts_are_leased_recorded_and_redelivered,
    retention_prunes_delivered_alerts_and_those_of_deleted_instances,
);
