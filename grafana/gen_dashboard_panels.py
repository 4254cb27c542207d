"""The panels of the cqlpulse dashboard, row by row (used by grafana/gen_dashboard.py; the
query and panel builders are in grafana/dashboard_parts.py). Every description says what to
read in the panel."""

from __future__ import annotations

import dashboard_parts as g


def build(b) -> None:
    T, rate, gauge, quantile = g.T, g.rate, g.gauge, g.quantile
    SEL, SEL_OP, W, RI = g.SEL, g.SEL_OP, g.W, g.RI
    req = "cqlpulse_requests_total"
    dur = "cqlpulse_request_duration_seconds"
    resp = "cqlpulse_response_time_seconds"
    lag = "cqlpulse_schedule_lag_seconds"
    err_sel = SEL_OP + ', outcome="error"'
    ok_sel = 'outcome="ok", ' + SEL_OP
    firing = 'ALERTS{alertstate="firing", alertname=~"Cqlpulse.*", job=~"$job"}'

    # ------------------------------------------------------------ the five-second row
    b.section("Now", collapsed=False)
    b.stat("Ops/s: achieved / target",
           "Completed requests per second of the selected instances, and the rate their "
           "schedules ask for (0 = unthrottled). Achieved well under target: see Pacing.",
           "ops", [T(rate(req, SEL), "achieved"), T(gauge("cqlpulse_target_rate"), "target")],
           decimals=0)
    b.stat("Response time p99 (ok)",
           "99th percentile of the response time of successful requests (from the intended "
           "start, so queueing in the client counts): what the users of the cluster would "
           "see. Without a rate it equals the service time.",
           "s", [T(quantile(0.99, resp, sel=SEL_OP), "p99")],
           steps=[{"color": "green", "value": None}, {"color": "orange", "value": 0.05},
                  {"color": "red", "value": 0.5}])
    b.stat("Errors/s",
           "Failed requests per second (after retries), all kinds. Red from 1/s.",
           "ops", [T(rate(req, err_sel), "errors")],
           steps=[{"color": "green", "value": None}, {"color": "red", "value": 1}])
    b.stat("In flight / limit",
           "Requests sent and not answered, against the in-flight limit. At the limit with "
           "a rate set, the cluster does not keep up (CqlpulseInFlightSaturated).",
           "short", [T(gauge("cqlpulse_in_flight_requests"), "in flight"),
                     T(gauge("cqlpulse_in_flight_limit"), "limit")], decimals=0)
    b.stat("Alerts firing",
           "cqlpulse alerts firing now for the selected jobs (deploy/README.md has a runbook "
           "entry for each). The Alerts table below names them.",
           "none", [T(f"count({firing}) or vector(0)", "firing", empty=g.NO_ALERTS)],
           steps=[{"color": "green", "value": None}, {"color": "red", "value": 1}],
           decimals=0, graph=False)
    b.stat("Run phase",
           "The phase of each selected instance: starting, warmup, measuring, paused, "
           "draining or done (cqlpulse_run_phase).",
           "none", [T(f'cqlpulse_run_phase{{{SEL}}} == 1{W}', "{{instance}}: {{phase}}",
                      instant=True)], text_mode="name", graph=False)

    b.timeseries("Achieved vs target ops/s",
                 "Completed requests per second against the rate the schedule asks for. A "
                 "gap means the client or the cluster cannot keep up; target 0 means "
                 "unthrottled.",
                 "ops", [T(rate(req, SEL), "achieved"), T(gauge("cqlpulse_target_rate"), "target"),
                         T(rate("cqlpulse_ops_issued_total", SEL), "issued")],
                 overrides=[g.dashed("target")])
    b.timeseries("Response time p99 by op (ok)",
                 "99th percentile of the response time of successful requests, per op, with "
                 "the service time p99 dashed: a gap between them is time spent waiting in "
                 "the client (schedule lag), not in the cluster.",
                 "s", [T(quantile(0.99, resp, "op"), "{{op}} response"),
                       T(quantile(0.99, dur, "op"), "{{op}} service")])
    b.table("Per-op summary",
            "One line per op over the last rate interval: ops/s, error ratio, and the "
            "response-time and service-time quantiles of successful requests.",
            "none",
            [T(rate(req, SEL_OP, "op"), instant=True, fmt="table"),
             T(f"{rate(req, err_sel, 'op')}\n/\n{rate(req, SEL_OP, 'op')}", instant=True,
               fmt="table"),
             T(quantile(0.5, resp, "op"), instant=True, fmt="table"),
             T(quantile(0.99, resp, "op"), instant=True, fmt="table"),
             T(quantile(0.999, resp, "op"), instant=True, fmt="table"),
             T(quantile(0.99, dur, "op"), instant=True, fmt="table"),
             T(rate("cqlpulse_retries_total", SEL_OP, "op"), instant=True, fmt="table")],
            h=7,
            organize={"excludeByName": {"Time": True},
                      "renameByName": {"Value #A": "ops/s", "Value #B": "error ratio",
                                       "Value #C": "response p50", "Value #D": "response p99",
                                       "Value #E": "response p99.9", "Value #F": "service p99",
                                       "Value #G": "retries/s"}},
            overrides=[g.unit_override(n, "s") for n in
                       ("response p50", "response p99", "response p99.9", "service p99")]
            + [g.unit_override("ops/s", "ops"), g.unit_override("retries/s", "ops"),
               g.unit_override("error ratio", "percentunit")])
    b.table("Alerts firing",
            "The cqlpulse alerts firing now, with their labels (deploy/README.md, Alerts, "
            "says what each means and what to do).",
            "none", [T(f"max by (alertname, severity, job, instance, op, shard) ({firing})",
                       instant=True, fmt="table", empty=g.NO_ALERTS)],
            w=12, h=6, organize={"excludeByName": {"Time": True, "Value": True}})
    b.table("Instances",
            "One line per instance: workload, model, shard of shard count, run id (new at "
            "each start), spec digest (changes on reload), phase, version, and the peak "
            "in-flight count.",
            "none",
            [T(f'max by (job, instance, workload, model, shard, shard_count, run_id, spec_digest) '
               f'(cqlpulse_run_info{{{SEL}, workload=~"$workload"}})', instant=True, fmt="table"),
             T(f"max by (job, instance, phase) (cqlpulse_run_phase{{{SEL}}} == 1{W})",
               instant=True, fmt="table"),
             T(f"max by (job, instance, version) (cqlpulse_build_info{{{SEL}}}{W})",
               instant=True, fmt="table"),
             T(f"max by (job, instance) (cqlpulse_in_flight_peak_requests{{{SEL}}}{W})",
               instant=True, fmt="table"),
             T(f"max by (job, instance) (cqlpulse_up{{{SEL}}}{W})", instant=True, fmt="table")],
            w=12, h=6,
            organize={"excludeByName": {"Time": True, "Value #A": True, "Value #B": True,
                                        "Value #C": True},
                      "renameByName": {"Value #D": "peak in flight", "Value #E": "up"}})

    # ------------------------------------------------------------ throughput
    b.section("Throughput", collapsed=True)
    b.timeseries("Ops/s by op", "Completed requests per second of each op.", "ops",
                 [T(rate(req, SEL_OP, "op"), "{{op}}")])
    b.timeseries("Ops/s by outcome", "Completed requests per second, ok and error.", "ops",
                 [T(rate(req, SEL_OP, "outcome"), "{{outcome}}")])
    b.timeseries("Achieved ops/s per shard",
                 "Each instance's completed requests per second, by shard of shard count.",
                 "ops",
                 [T(f"sum by (instance, shard, shard_count) (rate({req}{{{SEL}}}{RI})\n"
                    f"  * on(job, instance) group_left(shard, shard_count)\n"
                    f'  max by (job, instance, shard, shard_count) '
                    f'(cqlpulse_run_info{{workload=~"$workload"}}))',
                    "shard {{shard}}/{{shard_count}} ({{instance}})")], w=8)
    b.timeseries("Op mix", "Share of each op in the completed requests; compare with the "
                 "weights in the spec.", "percentunit",
                 [T(f"{rate(req, SEL_OP, 'op')}\n/ ignoring(op) group_left\n{rate(req, SEL_OP)}",
                    "{{op}}")], w=8)
    b.timeseries("Issued vs completed ops/s",
                 "Requests sent (cqlpulse_ops_issued_total) against requests completed. Issued "
                 "above completed for long means requests pile up in flight.", "ops",
                 [T(rate("cqlpulse_ops_issued_total", SEL), "issued"),
                  T(rate(req, SEL), "completed")], w=8)

    # ------------------------------------------------------------ latency
    b.section("Latency", collapsed=True)
    b.timeseries("Service time quantiles (ok)",
                 "Service time (request sent to response) of successful requests of the "
                 "selected ops: p50, p90, p99, p99.9.", "s",
                 [T(quantile(q, dur), f"p{q * 100:g}")
                  for q in (0.5, 0.9, 0.99, 0.999)])
    b.timeseries("Response time quantiles (ok)",
                 "Response time (intended start to response) of successful requests: free of "
                 "coordinated omission. Exists only with a rate.", "s",
                 [T(quantile(q, resp), f"p{q * 100:g}")
                  for q in (0.5, 0.9, 0.99, 0.999)])
    b.heatmap("Response time distribution",
              "Successful requests per second in each response-time bucket (classic buckets). "
              "Bands that rise or split show latency modes the quantiles hide.",
              T(f'sum by (le) (rate({resp}_bucket{{outcome="ok", {SEL_OP}}}{RI}){W})',
                "{{le}}", fmt="heatmap"), w=12)
    b.heatmap("Service time distribution",
              "Successful requests per second in each service-time bucket (classic buckets).",
              T(f'sum by (le) (rate({dur}_bucket{{outcome="ok", {SEL_OP}}}{RI}){W})',
                "{{le}}", fmt="heatmap"), w=12)
    b.timeseries("Failed-request latency p99 by kind",
                 "99th percentile of the service time of failed requests, per error kind: "
                 "timeouts sit at the timeout, fast failures (unavailable, overloaded) near "
                 "zero.", "s",
                 [T(quantile(0.99, "cqlpulse_failed_request_duration_seconds", "kind",
                             ok=False), "{{kind}}")], empty=g.NO_FAILURES)
    b.timeseries("Mean service time (ok)",
                 "Sum over count of the service time of successful requests: sensitive to "
                 "outliers the quantiles round away.", "s",
                 [T(f'{rate(dur + "_sum", ok_sel)}\n/\n{rate(dur + "_count", ok_sel)}',
                    "mean")])

    # ------------------------------------------------------------ pacing
    b.section("Pacing", collapsed=True)
    b.timeseries("In-flight requests vs limit",
                 "Requests in flight against the limit, and the highest in-flight count seen "
                 "since the start.", "short",
                 [T(gauge("cqlpulse_in_flight_requests"), "in flight"),
                  T(gauge("cqlpulse_in_flight_limit"), "limit"),
                  T(gauge("cqlpulse_in_flight_peak_requests"), "peak")],
                 overrides=[g.dashed("limit")])
    b.timeseries("Schedule lag quantiles",
                 "How late ops are sent after their intended start. Growing lag: the client "
                 "cannot issue the schedule (in-flight limit or CPU).", "s",
                 [T(quantile(q, lag, sel=SEL, ok=False), f"p{q * 100:g}")
                  for q in (0.5, 0.99, 0.999)])
    b.timeseries("Dropped ops/s by reason",
                 "Ops never sent: backlog (late, under on_backlog = \"drop\") or draining.",
                 "ops", [T(rate("cqlpulse_ops_dropped_total", SEL, "reason"), "{{reason}}")],
                 w=8)
    b.timeseries("Target rate per instance", "Each instance's slice of the target rate.", "ops",
                 [T(f"cqlpulse_target_rate{{{SEL}}}{W}", "{{instance}}")], w=8)
    b.timeseries("Config reloads", "Spec reloads per interval, applied or rejected.", "short",
                 [T(rate("cqlpulse_config_reloads_total", SEL, "result", fn="increase"),
                    "{{result}}")], w=8)

    # ------------------------------------------------------------ errors
    b.section("Errors", collapsed=True)
    b.timeseries("Errors/s by kind", "Failed requests per second of each error kind.", "ops",
                 [T(rate("cqlpulse_request_errors_total", SEL_OP, "kind"), "{{kind}}")])
    b.timeseries("Error ratio by op", "Share of each op's completed requests that failed "
                 "(CqlpulseOpErrorRatioHigh watches it).", "percentunit",
                 [T(f"{rate(req, err_sel, 'op')}\n/\n{rate(req, SEL_OP, 'op')}", "{{op}}")])
    b.timeseries("Retries/s by op", "Retries of idempotent requests per second.", "ops",
                 [T(rate("cqlpulse_retries_total", SEL_OP, "op"), "{{op}}")], w=12)
    b.panel("bargauge", "Errors by kind over the time range",
            "Total failed requests of each kind over the dashboard's time range.", "short",
            [T(rate("cqlpulse_request_errors_total", SEL_OP, "kind", fn="increase",
                    rng="[$__range]"), "{{kind}}", instant=True)], w=12,
            defaults={"decimals": 0, "min": 0, "color": {"mode": "thresholds"},
                      "thresholds": {"mode": "absolute",
                                     "steps": [{"color": "red", "value": None}]}},
            options={"displayMode": "basic", "orientation": "horizontal",
                     "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                     "showUnfilled": True, "valueMode": "color", "namePlacement": "left"})

    # ------------------------------------------------------------ nodes (issue 11)
    b.section("Nodes (coordinators)", collapsed=True)
    node_sel = SEL
    b.timeseries("Requests/s by node",
                 "Completed requests per second by coordinator node and outcome: a node "
                 "taking less than its share is down or slow.", "ops",
                 [T(rate("cqlpulse_node_requests_total", node_sel, "node, outcome"),
                    "{{node}} {{outcome}}")])
    b.timeseries("Service time p99 by node (ok)",
                 "99th percentile of the service time of successful requests by coordinator: "
                 "one slow node shows here before it moves the total.", "s",
                 [T(quantile(0.99, "cqlpulse_node_request_duration_seconds", "node",
                             sel=node_sel, ok=False), "{{node}}")])
    b.timeseries("In flight by node", "Requests in flight by coordinator node.", "short",
                 [T(gauge("cqlpulse_node_in_flight_requests", "node"), "{{node}}")], w=8,)
    b.timeseries("Nodes up", "1 for each node the driver considers up, 0 while it is down (lowest over the "
                 "selected instances).",
                 "short", [T(f"min by (node) (cqlpulse_node_up{{{SEL}}}{W})", "{{node}}")], w=8,)
    b.timeseries("Speculative executions/s",
                 "Speculative executions sent per second (only with speculative execution on).",
                 "ops", [T(rate("cqlpulse_speculative_executions_total", SEL), "speculative")],
                 w=8)

    recall_section(b, g)

    # ------------------------------------------------------------ database
    b.section("Database (ScyllaDB coordinator)", collapsed=True)
    b.timeseries("Client vs coordinator write p99",
                 "ScyllaDB's own coordinator write latency p99 (its port 9180, job scylla; "
                 "microseconds converted to seconds) beside cqlpulse's service time p99. The "
                 "gap is network and client time. Empty against Cassandra: see "
                 "deploy/README.md for its JMX exporter.", "s",
                 [T("histogram_quantile(0.99, sum by (le) (rate("
                    "scylla_storage_proxy_coordinator_write_latency_bucket[$__rate_interval])))"
                    " / 1e6", "coordinator p99", empty=g.NO_SCYLLA),
                  T(quantile(0.99, dur), "client p99")])
    b.timeseries("Client vs coordinator read p99",
                 "ScyllaDB's coordinator read latency p99 beside cqlpulse's service time p99.",
                 "s",
                 [T("histogram_quantile(0.99, sum by (le) (rate("
                    "scylla_storage_proxy_coordinator_read_latency_bucket[$__rate_interval])))"
                    " / 1e6", "coordinator p99", empty=g.NO_SCYLLA),
                  T(quantile(0.99, dur), "client p99")])

    # ------------------------------------------------------------ client
    b.section("Client health", collapsed=True)
    b.timeseries("CPU", "CPU time used by each client process per second (1 = one core).",
                 "percentunit", [T(rate("process_cpu_seconds_total", SEL, "instance"),
                                   "{{instance}}")], w=8)
    b.timeseries("Client CPU per op",
                 "Client CPU seconds per completed request: rising values mean the client, not "
                 "the cluster, may be the bottleneck.", "s",
                 [T(f"{rate('process_cpu_seconds_total', SEL, 'instance')}\n/\n"
                    f"{rate(req, SEL, 'instance')}", "{{instance}}")], w=8)
    b.timeseries("Memory", "Resident and virtual memory of each client.", "bytes",
                 [T(f"process_resident_memory_bytes{{{SEL}}}{W}", "resident {{instance}}"),
                  T(f"process_virtual_memory_bytes{{{SEL}}}{W}", "virtual {{instance}}")], w=8)
    b.timeseries("Connections and hosts",
                 "Driver connections, nodes known and nodes connected (CqlpulseHostsDisconnected "
                 "fires when connected stays under known).", "short",
                 [T(gauge("cqlpulse_connections"), "connections"),
                  T(gauge("cqlpulse_known_hosts"), "known hosts"),
                  T(gauge("cqlpulse_connected_hosts"), "connected hosts")], w=8)
    b.timeseries("Process I/O", "Bytes read and written by each client (network and files).",
                 "Bps", [T(rate("process_io_read_bytes_total", SEL, "instance"), "read {{instance}}"),
                         T(rate("process_io_write_bytes_total", SEL, "instance"),
                           "write {{instance}}")], w=8)
    b.timeseries("Payload and rows by op", "Bytes of bound values sent and rows read per "
                 "second, by op.", "short",
                 [T(rate("cqlpulse_payload_bytes_total", SEL_OP, "op"), "{{op}} bytes"),
                  T(rate("cqlpulse_rows_total", SEL_OP, "op"), "{{op}} rows")], w=8)
    b.timeseries("Verified reads by result",
                 "Reads that read back a row its write had acknowledged before the read was "
                 "sent, per second by op and result: ok, missing (the row is gone), mismatch "
                 "(other values), skipped (nothing acknowledged yet). Any missing or mismatch "
                 "is acknowledged data lost or changed (CqlpulseDataLost); the log names the "
                 "first bad keys.", "ops",
                 [T(rate("cqlpulse_verified_reads_total", SEL_OP, "op, result"),
                    "{{op}} {{result}}", empty=g.NO_VERIFY)], w=8)
    b.timeseries("Time per page of reads",
                 "Service time of successful reads over the pages they fetched, by op: a "
                 "read of a wide partition takes several pages, each a round trip.", "s",
                 [T(f"{rate('cqlpulse_paged_read_seconds_total', SEL_OP, 'op')}\n/\n"
                    f"{rate('cqlpulse_pages_total', SEL_OP, 'op')}", "{{op}}",
                    empty=g.NO_PAGES)], w=8)
    b.timeseries("Open file descriptors", "Open descriptors against the limit.", "short",
                 [T(f"process_open_fds{{{SEL}}}{W}", "open {{instance}}"),
                  T(f"process_max_fds{{{SEL}}}{W}", "limit {{instance}}")], w=8)
    b.timeseries("Uptime and issuing",
                 "Time since each client process started (a drop is a restart); cqlpulse_up "
                 "is 1 while connected and issuing.", "s",
                 [T(f"time() - process_start_time_seconds{{{SEL}}}{W}", "uptime {{instance}}"),
                  T(f"cqlpulse_up{{{SEL}}}{W}", "issuing {{instance}}")], w=8)
    b.timeseries("Targets up",
                 "Scrape targets Prometheus reaches (up = 1) against all targets of the "
                 "selected jobs: a target down is CqlpulseTargetDown, one gone altogether "
                 "CqlpulseTargetVanished.", "short",
                 [T(f"sum by (job) (up{{{SEL}}})", "{{job}} up"),
                  T(f"count by (job) (up{{{SEL}}})", "{{job}} targets")], w=8)
    b.timeseries("Shards reporting",
                 "Distinct shards reporting, against the shard count (CqlpulseShardsMissing "
                 "fires when fewer report).", "short",
                 [T(f'count by (job) (max by (job, shard) '
                    f'(cqlpulse_run_info{{{SEL}, workload=~"$workload"}}))', "{{job}} reporting"),
                  T(f"max by (job) (cqlpulse_shards{{{SEL}}}{W})", "{{job}} expected")],
                 w=8)


def recall_section(b, g) -> None:
    """Vector search: recall@k of the ANN ops with [ops.recall], beside their latency."""
    T, rate, gauge, quantile, SEL, SEL_OP = g.T, g.rate, g.gauge, g.quantile, g.SEL, g.SEL_OP
    b.section("Vector search (recall)", collapsed=True)
    b.timeseries("Recall@k by op",
                 "True nearest neighbours the checked ANN queries returned over those they "
                 "should have (exact top k over the rows written, computed by cqlpulse), per "
                 "rate interval; the dashed line is the spec's alert_below "
                 "(CqlpulseRecallLow).", "percentunit",
                 [T(f"{rate('cqlpulse_recall_hits_total', SEL_OP, 'op')}\n/\n"
                    f"{rate('cqlpulse_recall_expected_total', SEL_OP, 'op')}", "{{op}}",
                    empty=g.NO_RECALL),
                  T(gauge("cqlpulse_recall_threshold", "op", SEL_OP), "threshold",
                    empty=g.NO_RECALL)],
                 overrides=[g.dashed("threshold")])
    b.timeseries("ANN service time p50 and p99",
                 "Service time of the ANN ops with [ops.recall]: read beside recall, as an "
                 "index setting or compaction trades one for the other.", "s",
                 [T(f"{quantile(q, 'cqlpulse_request_duration_seconds', 'op')}\n"
                    f"and on(op) max by (op) (cqlpulse_recall_expected_total{{{SEL_OP}}})",
                    f"{{{{op}}}} p{q * 100:g}", empty=g.NO_RECALL) for q in (0.5, 0.99)])
    b.timeseries("Recall checks and skips/s",
                 "Sampled ANN queries checked, and skipped: over the checker's CPU budget "
                 "(recall.cpu) or with its queue full.", "ops",
                 [T(rate("cqlpulse_recall_count", SEL_OP, "op"), "{{op}} checked",
                    empty=g.NO_RECALL),
                  T(rate("cqlpulse_recall_skipped_total", SEL_OP, "op, reason"),
                    "{{op}} skipped ({{reason}})", empty=g.NO_RECALL)], w=12)
    b.timeseries("Recall checker CPU",
                 "Time the recall checker spends per second (1 = one core), against its budget.",
                 "percentunit",
                 [T(rate("cqlpulse_recall_checker_cpu_seconds_total", SEL_OP, "op"), "{{op}}",
                    empty=g.NO_RECALL)], w=12)
