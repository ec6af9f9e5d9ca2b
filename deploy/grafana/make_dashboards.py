#!/usr/bin/env python3
"""Writes the Grafana dashboards in dashboards/ (JSON, provisioned by Grafana).

The dashboards are made here rather than edited in Grafana's UI so that every panel
follows the same conventions (Prometheus data source `prometheus`, the `service_name`
label the collector sets from each component's `service.name`, rates over
`$__rate_interval`) and a review sees each query as one line. Run it after changing a
panel: `python3 deploy/grafana/make_dashboards.py`. The compose test checks that every
metric a query names is one the suite exports. docs/operations.md explains each panel.
"""

import json
import pathlib

DS = {"type": "prometheus", "uid": "prometheus"}
RATE = "$__rate_interval"


def panel(title, exprs, unit="short", kind="timeseries", description="", legend=None, w=12, h=8):
    targets = []
    for i, expr in enumerate(exprs if isinstance(exprs, list) else [exprs]):
        targets.append({"datasource": DS, "expr": expr, "refId": chr(65 + i),
                        "legendFormat": (legend[i] if legend else "__auto")})
    return {"type": kind, "title": title, "description": description, "datasource": DS,
            "targets": targets, "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
            "options": {}, "gridPos": {"w": w, "h": h}}


def dashboard(uid, title, description, panels, variables=()):
    x = y = 0
    for i, p in enumerate(panels):
        p["id"] = i + 1
        if x + p["gridPos"]["w"] > 24:
            x, y = 0, y + 8
        p["gridPos"].update({"x": x, "y": y})
        x += p["gridPos"]["w"]
    return {
        "uid": uid, "title": title, "description": description, "tags": ["govmedia"],
        "schemaVersion": 39, "version": 1, "editable": False, "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"}, "timezone": "browser",
        "templating": {"list": list(variables)}, "annotations": {"list": []},
        "panels": panels,
    }


SERVICE_VAR = {
    "name": "service", "label": "Service", "type": "query", "datasource": DS,
    "query": {"query": "label_values(rpc_server_call_duration_seconds_count, service_name)", "refId": "service"},
    "definition": "label_values(rpc_server_call_duration_seconds_count, service_name)",
    "includeAll": True, "multi": True, "current": {"text": "All", "value": "$__all"}, "refresh": 2,
}
SEL = 'service_name=~"$service"'

DASHBOARDS = {
    "service-overview": dashboard(
        "govmedia-services", "govmedia · Services",
        "Calls, errors, latency and saturation of each service (identity, audit, content, interaction).",
        [
            panel("Calls per second", f'sum by (service_name) (rate(rpc_server_call_duration_seconds_count{{{SEL}}}[{RATE}]))',
                  "reqps", description="Every gRPC call a service answered, health probes excluded."),
            panel("Server errors (share of calls)",
                  f'sum by (service_name) (rate(rpc_server_call_duration_seconds_count{{{SEL},rpc_grpc_status_code=~"2|4|13|14|15"}}[{RATE}])) '
                  f'/ sum by (service_name) (rate(rpc_server_call_duration_seconds_count{{{SEL}}}[{RATE}]))',
                  "percentunit", description="UNKNOWN, DEADLINE_EXCEEDED, INTERNAL, UNAVAILABLE, DATA_LOSS: the service's own failures, not refusals."),
            panel("Latency p50 / p99",
                  [f'histogram_quantile(0.5, sum by (le, service_name) (rate(rpc_server_call_duration_seconds_bucket{{{SEL}}}[{RATE}])))',
                   f'histogram_quantile(0.99, sum by (le, service_name) (rate(rpc_server_call_duration_seconds_bucket{{{SEL}}}[{RATE}])))'],
                  "s", legend=["p50 {{service_name}}", "p99 {{service_name}}"]),
            panel("Calls in flight", f'sum by (service_name) (govmedia_rpc_server_active_calls{{{SEL}}})', "short",
                  description="Calls being handled now: saturation."),
            panel("Refusals by code",
                  f'sum by (service_name, rpc_grpc_status_code) (rate(rpc_server_call_duration_seconds_count{{{SEL},rpc_grpc_status_code=~"3|5|6|7|8|9|10|16"}}[{RATE}]))',
                  "reqps", description="Calls refused for the caller's reasons: bad input, not found, denied, unauthenticated, failed precondition."),
            panel("Slowest methods (p99)",
                  f'topk(10, histogram_quantile(0.99, sum by (le, rpc_service, rpc_method) (rate(rpc_server_call_duration_seconds_bucket{{{SEL}}}[{RATE}]))))',
                  "s", legend=["{{rpc_service}}/{{rpc_method}}"]),
        ], [SERVICE_VAR]),
    "gateway": dashboard(
        "govmedia-gateway", "govmedia · Gateway",
        "The edge: what callers see, including the upstream's time, and what the gateway refused itself.",
        [
            panel("Calls per second by upstream service", f'sum by (rpc_service) (rate(govmedia_gateway_call_duration_seconds_count[{RATE}]))', "reqps"),
            panel("Latency p50 / p99 as callers see it",
                  [f'histogram_quantile(0.5, sum by (le) (rate(govmedia_gateway_call_duration_seconds_bucket[{RATE}])))',
                   f'histogram_quantile(0.99, sum by (le) (rate(govmedia_gateway_call_duration_seconds_bucket[{RATE}])))'],
                  "s", legend=["p50", "p99"]),
            panel("Refused by the gateway, by reason", f'sum by (reason) (rate(govmedia_gateway_rejections_total[{RATE}]))', "reqps",
                  description="rate_limited (a caller over its limit), message_too_large, upstream_unavailable (no replica reachable), caller_gone."),
            panel("Calls in flight", 'sum(govmedia_gateway_active_calls)', "short"),
            panel("Answers by code", f'sum by (rpc_grpc_status_code) (rate(govmedia_gateway_call_duration_seconds_count[{RATE}]))', "reqps"),
            panel("Gateway time added (p50 gateway − p50 services)",
                  f'histogram_quantile(0.5, sum by (le) (rate(govmedia_gateway_call_duration_seconds_bucket[{RATE}]))) '
                  f'- histogram_quantile(0.5, sum by (le) (rate(rpc_server_call_duration_seconds_bucket[{RATE}])))',
                  "s", description="An estimate: the edge's own cost per call, the second hop included."),
        ]),
    "database-outbox": dashboard(
        "govmedia-database", "govmedia · Database and audit outbox",
        "The pools, the wait to begin a write, and the audit outbox between each service and the audit log.",
        [
            panel("Pool connections in use", 'sum by (pool, state) (govmedia_db_pool_connections)', "short", legend=["{{pool}} {{state}}"]),
            panel("Wait to begin a write p99",
                  f'histogram_quantile(0.99, sum by (le, service_name) (rate(govmedia_db_begin_wait_seconds_bucket[{RATE}])))', "s",
                  description="A pooled connection, and on SQLite the write lock. Growing: the pool is too small or a writer holds the lock."),
            panel("Outbox backlog", 'sum by (outbox) (govmedia_outbox_backlog)', "short",
                  description="Audit records written with their change and not yet in the audit log. Non-zero for long: the audit service is down or refusing."),
            panel("Oldest record waiting", 'max by (outbox) (govmedia_outbox_oldest_age_seconds)', "s"),
            panel("Dead letters kept", 'sum by (outbox) (govmedia_outbox_dead_letters_kept)', "short", kind="stat",
                  description="Records the audit service refused until the relay gave up: re-drive them with `govmedia outbox redrive` once the cause is fixed."),
            panel("Audit log length", 'max(govmedia_audit_log_sequence)', "short", kind="stat"),
        ]),
    "review-pipeline": dashboard(
        "govmedia-review", "govmedia · Review and publishing",
        "The three-stage review (R3.2) and publishing (R3.3), drawn from the audit events as they enter the log.",
        [
            panel("Drafts created and submitted",
                  [f'sum(increase(govmedia_audit_events_total{{action="draft.created"}}[1h]))',
                   f'sum(increase(govmedia_audit_events_total{{action="draft.submitted"}}[1h]))'],
                  "short", legend=["created", "submitted"]),
            panel("Review decisions per hour", f'sum by (action) (increase(govmedia_audit_events_total{{action=~"draft.approved|draft.rejected|draft.changes_requested|draft.proofread"}}[1h]))', "short"),
            panel("Refused review attempts", f'sum by (action) (increase(govmedia_audit_events_total{{producer="content",outcome="denied"}}[1h]))', "short",
                  description="Self-approval, a second stage by the same person, and other separations of duty (R3.2.2)."),
            panel("Publications", f'sum by (action) (increase(govmedia_audit_events_total{{action=~"publication.published|publication.failed|publication.attempt_failed|publication.expired"}}[1h]))', "short"),
            panel("Scheduler lag p99", f'histogram_quantile(0.99, sum by (le) (rate(govmedia_scheduler_lag_seconds_bucket[{RATE}])))', "s",
                  description="From a publication's due time to its claim. Growing: the scheduler is behind or stopped."),
        ]),
    "interaction": dashboard(
        "govmedia-interaction", "govmedia · Interaction and moderation",
        "Answering and moderating the public (R4), drawn from the audit events.",
        [
            panel("Comments and messages taken in", f'sum by (action) (increase(govmedia_audit_events_total{{producer="interaction",action=~"comment.ingested|message.ingested"}}[1h]))', "short"),
            panel("Replies and moderation actions", f'sum by (action) (increase(govmedia_audit_events_total{{producer="interaction",action=~"reply.posted|conversation.replied|comment.hidden|comment.deleted|comment.flagged"}}[1h]))', "short"),
            panel("Escalated for lateness", f'sum(increase(govmedia_audit_events_total{{producer="interaction",action=~"comment.escalated|conversation.escalated|referral.escalated"}}[1h]))', "short",
                  description="Items past their answer deadline, escalated by the deadline watch."),
            panel("Interaction calls p99", f'histogram_quantile(0.99, sum by (le, rpc_method) (rate(rpc_server_call_duration_seconds_bucket{{service_name="govmedia-interaction"}}[{RATE}])))', "s"),
        ]),
    "inspection-readiness": dashboard(
        "govmedia-inspection", "govmedia · Inspection readiness and security",
        "Accounts at each inspection-readiness level (R8.1.1), alerts, and the sign-in events a security officer watches (R2.2.2).",
        [
            panel("Accounts by readiness level", 'sum by (level) (govmedia_audit_compliance_accounts)', "short", kind="stat", w=8),
            panel("Readiness alerts", f'sum by (level) (increase(govmedia_audit_compliance_alerts_total[1d]))', "short", w=8),
            panel("Audit log length", 'max(govmedia_audit_log_sequence)', "short", kind="stat", w=8),
            panel("Failed and locked sign-ins", f'sum by (action) (increase(govmedia_audit_events_total{{action=~"user.login.failed|user.login.locked"}}[1h]))', "short"),
            panel("Denied attempts on anything", f'sum by (producer) (increase(govmedia_audit_events_total{{outcome="denied"}}[1h]))', "short",
                  description="Every refusal the services audit: permission denied, separation of duties, frozen accounts."),
        ]),
}

if __name__ == "__main__":
    out = pathlib.Path(__file__).parent / "dashboards"
    for name, board in DASHBOARDS.items():
        (out / f"{name}.json").write_text(json.dumps(board, indent=2, ensure_ascii=False) + "\n")
