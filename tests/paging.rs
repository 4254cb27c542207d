//! Paged reads on the real node: a read of a partition wider than its page fetches every
//! page, so it counts every row; the page size is per op. Needs the node (`scripts/test`).

mod common;

use common::*;

const ROWS: u64 = 2_500;

fn spec(ks: &str, ops: &str) -> String {
    format!(
        r#"
name = "paging"
[schema]
keyspace = "{ks}"
statements = ["CREATE TABLE IF NOT EXISTS wide (p int, c int, v text, PRIMARY KEY (p, c))"]
[data.p]
kind = "uniform"
min = 7
max = 7
[data.c]
kind = "sequence"
[data.v]
kind = "text"
size = 20
{ops}
[load]
model = "sync"
workers = 2
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_fetches_all_its_pages_at_its_own_page_size() {
    require_cassandra();
    let _serial = serial().await;
    let ks = keyspace("paging");
    let insert = "[[ops]]\nname = \"insert\"\ncql = \"INSERT INTO wide (p, c, v) VALUES (?, ?, ?)\"\nargs = [\"p\", \"c\", \"v\"]";
    let path = spec_file("paging-insert", &spec(&ks, insert));
    let summary = run(&path, vec![set("load.ops", &ROWS.to_string())]).await;
    assert_eq!(summary.ok, ROWS, "{}", summary.table());
    // 2,500 rows in pages of 100 (25 pages), and at the driver's default (5,000: one page).
    // Pages per read: 25 of 100 (and maybe an empty last one, when the rows fill the last
    // page exactly), 3 of 999, 1 at the default.
    for (page_size, pages) in [
        ("page_size = 100", 25..=26),
        ("page_size = 999", 3..=3),
        ("", 1..=1),
    ] {
        let read = format!(
            "[[ops]]\nname = \"slice\"\ncql = \"SELECT * FROM wide WHERE p = ?\"\nargs = [\"p\"]\n{page_size}"
        );
        let path = spec_file("paging-read", &spec(&ks, &read));
        let summary = run(&path, vec![set("load.ops", "4")]).await;
        assert_eq!(summary.ok, 4, "{}", summary.table());
        assert_eq!(
            summary.ops[0].rows,
            4 * ROWS,
            "{page_size}: every page of every read"
        );
        let op = &summary.ops[0];
        assert!(
            (4 * pages.start()..=4 * pages.end()).contains(&op.pages),
            "{page_size}: {} pages of 4 reads",
            op.pages
        );
        let per_page = op.mean_page_time_ms.expect("a time per page");
        let p50 = op.service_time.as_ref().unwrap().p50_ms;
        assert!(
            per_page > 0.0 && per_page <= op.service_time.as_ref().unwrap().max_ms,
            "{page_size}: {per_page} ms per page, service p50 {p50} ms"
        );
    }
    drop_keyspace(&session().await, &ks).await;
}

/// Partitions of chosen sizes written in op order; a slice of each finds exactly its rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wide_partitions_have_the_sizes_the_spec_chose_and_slices_find_them() {
    require_cassandra();
    let _serial = serial().await;
    let ks = keyspace("wide");
    let text = format!(
        r#"
name = "wide"
[schema]
keyspace = "{ks}"
mode = "recreate"
statements = ["CREATE TABLE IF NOT EXISTS wide (p bigint, c int, v text, PRIMARY KEY (p, c))"]
[data.p]
kind = "partition"
rows = {{ min = 10, max = 300 }}
[data.c]
kind = "clustering"
rows = {{ min = 10, max = 300 }}
[data.v]
kind = "text"
size = 10
[[ops]]
name = "insert"
cql = "INSERT INTO wide (p, c, v) VALUES (?, ?, ?)"
args = ["p", "c", "v"]
[load]
model = "sync"
workers = 4
"#
    );
    let partitions = 12u64;
    let path = spec_file("wide", &text);
    let summary = run(
        &path,
        vec![set("load.ops", &(partitions * 300).to_string())],
    )
    .await;
    assert_eq!(summary.ok, partitions * 300, "{}", summary.table());
    let session = session().await;
    let mut total = 0;
    for p in 0..partitions {
        let want = cqlpulse::data::partition_rows(p, 10, 300) as i64;
        let n = count(&session, &format!("{ks}.wide WHERE p = {p}")).await;
        assert_eq!(n, want, "partition {p}");
        total += n;
    }
    // The slice read of partition p (the op index's partition) returns its rows, paged.
    let slice = text.replace(
        "[[ops]]\nname = \"insert\"\ncql = \"INSERT INTO wide (p, c, v) VALUES (?, ?, ?)\"\nargs = [\"p\", \"c\", \"v\"]",
        "[[ops]]\nname = \"slice\"\ncql = \"SELECT * FROM wide WHERE p = ?\"\nargs = [\"p\"]\npage_size = 50",
    )
    .replace("mode = \"recreate\"", "mode = \"create_if_missing\"");
    let path = spec_file("wide-slice", &slice);
    let summary = run(
        &path,
        vec![set("load.ops", &(partitions * 300).to_string())],
    )
    .await;
    assert_eq!(summary.ok, partitions * 300, "{}", summary.table());
    // Op indices p*300 .. p*300+299 all read partition p: 300 reads of each.
    assert_eq!(summary.ops[0].rows as i64, 300 * total);
    drop_keyspace(&session, &ks).await;
}
