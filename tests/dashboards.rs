//! Every query of the shipped Grafana dashboard returns data from a real Prometheus that
//! scraped a real run against the real node (the queries are evaluated by
//! `scripts/check-dashboard-data`; its allow-list names the panels allowed to be empty).

mod common;

use std::time::Duration;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_query_returns_data_from_a_live_run() {
    require_cassandra();
    let prom = prometheus_addr();
    let _serial = serial().await;
    let ks = keyspace("dash");
    // Reads and writes at a rate, so that response time and schedule lag have data too.
    let spec = testtable_spec(&ks, "model = \"chains\"\nchains = 16\nrate = 800.0")
        + "[[ops]]\nname = \"read\"\ncql = \"SELECT * FROM testtable WHERE thekey = ?\"\nargs = [\"key\"]\nweight = 1.0\n";
    let mut d = Daemon::start(&spec_file("dash", &spec), "127.0.0.1:19464", &[], &[]);
    d.wait_ready();
    // Enough scrapes for every rate and quantile over the 15 s window.
    wait_for(Duration::from_secs(60), "20 scrapes of this run", || {
        let q = "count_over_time(cqlpulse_requests_total{instance=\"127.0.0.1:19464\",op=\"insert\",outcome=\"ok\"}[20s])";
        promql_value(&prom, q, unix_now()).is_some_and(|n| n >= 20.0)
    });
    check_dashboard_data(&prom, "15s");
    d.signal("TERM");
    assert_eq!(d.wait(Duration::from_secs(15)), Some(0));
    drop_keyspace(&session().await, &ks).await;
}
