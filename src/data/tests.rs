use super::*;

fn ints(g: &Generator, n: u64) -> Vec<i64> {
    (0..n)
        .map(|i| match g.value(7, 0, i) {
            Value::Int(v) => v,
            other => panic!("not an int: {other:?}"),
        })
        .collect()
}

#[test]
fn values_are_a_pure_function_of_seed_stream_and_index() {
    let g = Generator::new(
        &GenSpec::Uniform {
            min: 0,
            max: 1_000_000,
        },
        1,
        0,
    );
    assert_eq!(g.value(1, 3, 42), g.value(1, 3, 42));
    assert_ne!(g.value(1, 3, 42), g.value(2, 3, 42), "seed must matter");
    assert_ne!(g.value(1, 3, 42), g.value(1, 4, 42), "stream must matter");
    let text = Generator::new(
        &GenSpec::Text {
            size: SizeSpec::Fixed(16),
        },
        9,
        0,
    );
    let again = Generator::new(
        &GenSpec::Text {
            size: SizeSpec::Fixed(16),
        },
        9,
        0,
    );
    assert_eq!(text.value(9, 0, 5), again.value(9, 0, 5));
}

#[test]
fn sequence_counts_from_start() {
    let g = Generator::new(&GenSpec::Sequence { start: 10 }, 0, 0);
    assert_eq!(ints(&g, 4), vec![10, 11, 12, 13]);
}

#[test]
fn uniform_stays_in_range_and_is_flat() {
    let g = Generator::new(&GenSpec::Uniform { min: -5, max: 4 }, 0, 0);
    let v = ints(&g, 100_000);
    let mut counts = [0u32; 10];
    for x in &v {
        assert!((-5..=4).contains(x));
        counts[(x + 5) as usize] += 1;
    }
    for c in counts {
        assert!(
            (9_000..11_000).contains(&c),
            "bucket count {c} is far from 10000"
        );
    }
}

#[test]
fn zipf_rank_one_has_its_theoretical_share() {
    let n = 1000u64;
    let s = 1.0;
    let g = Generator::new(
        &GenSpec::Zipf {
            min: 0,
            count: n,
            exponent: s,
        },
        0,
        0,
    );
    let v = ints(&g, 200_000);
    assert!(v.iter().all(|x| (0..n as i64).contains(x)));
    let harmonic: f64 = (1..=n).map(|k| 1.0 / (k as f64).powf(s)).sum();
    let expected = 1.0 / harmonic; // share of rank 1 (value 0)
    let got = v.iter().filter(|&&x| x == 0).count() as f64 / v.len() as f64;
    assert!(
        (got - expected).abs() < 0.01,
        "rank-1 share {got:.4} vs {expected:.4}"
    );
    let rank2 = v.iter().filter(|&&x| x == 1).count() as f64 / v.len() as f64;
    assert!(
        (rank2 - expected / 2.0).abs() < 0.01,
        "rank-2 share {rank2:.4}"
    );
}

#[test]
fn normal_has_its_mean_and_deviation_and_respects_bounds() {
    let g = Generator::new(
        &GenSpec::Normal {
            mean: 1000.0,
            stddev: 100.0,
            min: Some(0),
            max: Some(1300),
        },
        0,
        0,
    );
    let v = ints(&g, 100_000);
    let mean = v.iter().sum::<i64>() as f64 / v.len() as f64;
    let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / v.len() as f64;
    assert!((mean - 1000.0).abs() < 2.0, "mean {mean}");
    assert!((var.sqrt() - 100.0).abs() < 3.0, "stddev {}", var.sqrt());
    assert!(v.iter().all(|&x| (0..=1300).contains(&x)));
}

#[test]
fn hotspot_sends_the_hot_probability_to_the_hot_range() {
    let g = Generator::new(
        &GenSpec::Hotspot {
            min: 0,
            max: 9999,
            hot_fraction: 0.1,
            hot_probability: 0.9,
        },
        0,
        0,
    );
    let v = ints(&g, 100_000);
    let hot = v.iter().filter(|&&x| x < 1000).count() as f64 / v.len() as f64;
    assert!((hot - 0.9).abs() < 0.01, "hot share {hot}");
    assert!(v.iter().all(|&x| (0..10_000).contains(&x)));
}

#[test]
fn text_sizes_stay_in_range_and_are_alphanumeric() {
    let g = Generator::new(
        &GenSpec::Text {
            size: SizeSpec::Range { min: 5, max: 50 },
        },
        3,
        0,
    );
    let mut seen = std::collections::HashSet::new();
    for i in 0..10_000 {
        let Value::Bytes(b) = g.value(3, 0, i) else {
            panic!()
        };
        assert!((5..=50).contains(&b.len()));
        assert!(b.iter().all(u8::is_ascii_alphanumeric));
        seen.insert(b.len());
    }
    assert_eq!(seen.len(), 46, "every size in the range appears");
}

#[test]
fn uuids_are_version_4_and_timeuuids_version_1_in_op_order() {
    let g = Generator::new(&GenSpec::Uuid {}, 0, 0);
    let Value::Uuid(u) = g.value(0, 0, 1) else {
        panic!()
    };
    assert_eq!(u[6] >> 4, 4);
    assert_eq!(u[8] >> 6, 0b10);
    let t = Generator::new(&GenSpec::Timeuuid { start_ms: None }, 0, 1_700_000_000_000);
    let Value::Uuid(a) = t.value(0, 0, 1) else {
        panic!()
    };
    let Value::Uuid(b) = t.value(0, 0, 2) else {
        panic!()
    };
    assert_eq!(a[6] >> 4, 1);
    assert_ne!(a, b);
    let ts = Generator::new(
        &GenSpec::Timestamp {
            start_ms: Some(1000),
            step_ms: 10,
        },
        0,
        0,
    );
    assert_eq!(ts.value(0, 0, 3), Value::Timestamp(1030));
}

#[test]
fn extreme_ranges_do_not_panic() {
    // Found by reading the code after fuzzing: the full i64 range overflowed the span.
    for spec in [
        GenSpec::Hotspot {
            min: i64::MIN,
            max: i64::MAX,
            hot_fraction: 0.1,
            hot_probability: 0.9,
        },
        GenSpec::Uniform {
            min: i64::MIN,
            max: i64::MAX,
        },
        GenSpec::Zipf {
            min: i64::MAX,
            count: u64::MAX,
            exponent: 1.0,
        },
        GenSpec::Sequence { start: i64::MAX },
        GenSpec::Timestamp {
            start_ms: Some(i64::MAX),
            step_ms: i64::MAX,
        },
        GenSpec::Normal {
            mean: 1e300,
            stddev: 1e300,
            min: None,
            max: None,
        },
    ] {
        let g = Generator::new(&spec, 0, 0);
        for i in [0, 1, u64::MAX] {
            let _ = g.value(0, 0, i);
        }
    }
}

fn specs(text: &str) -> std::collections::BTreeMap<String, GenSpec> {
    #[derive(serde::Deserialize)]
    struct Data {
        data: std::collections::BTreeMap<String, GenSpec>,
    }
    toml::from_str::<Data>(text).unwrap().data
}

#[test]
fn composites_resolve_names_and_sizes_stay_in_range() {
    let data = specs(
        r#"
        [data.n]
        kind = "sequence"
        [data.tags]
        kind = "set"
        element = "n"
        size = { min = 2, max = 4 }
        [data.maybe]
        kind = "sparse"
        of = "tags"
        nulls = 0.25
        "#,
    );
    let built = build_all(&data, 3, 0).unwrap();
    let names: Vec<&str> = built.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["maybe", "n", "tags"],
        "name order: an index is a stream"
    );
    let (tags, maybe) = (&built[2].1, &built[0].1);
    let mut nulls = 0;
    for i in 0..4000 {
        let n = tags.count(3, 2, i);
        assert!((2..=4).contains(&n), "size {n}");
        let Datum::List(elements) = tags.datum(3, 2, i) else {
            panic!("a set is a list of elements")
        };
        assert_eq!(elements.len(), n);
        // a sequence element counts elements: op i's are i * MAX_ELEMENTS + j
        let first = i as i64 * i64::from(MAX_ELEMENTS);
        assert_eq!(elements[0], Datum::Int(first));
        match maybe.datum(3, 2, i) {
            Datum::Null => nulls += 1,
            d => assert_eq!(d, tags.datum(3, 2, i), "a sparse value is its inner one"),
        }
    }
    assert!((800..1200).contains(&nulls), "{nulls} nulls of 4000 at 25%");
}

#[test]
fn a_normalised_vector_has_unit_length() {
    let data = specs(
        r#"
        [data.x]
        kind = "gaussian"
        [data.v]
        kind = "vector"
        element = "x"
        dimension = 16
        normalize = true
        "#,
    );
    let built = build_all(&data, 1, 0).unwrap();
    let Datum::List(xs) = built[0].1.datum(1, 0, 9) else {
        panic!("a vector is a list")
    };
    let length: f64 = xs
        .iter()
        .map(|d| match d {
            Datum::Float(x) => x * x,
            other => panic!("{other:?}"),
        })
        .sum();
    assert_eq!(xs.len(), 16);
    assert!((length - 1.0).abs() < 1e-9, "{length}");
}

#[test]
fn partitions_are_written_in_order_with_their_own_sizes() {
    let data = specs(
        r#"
        [data.p]
        kind = "partition"
        rows = { min = 3, max = 40 }
        start = 100
        [data.c]
        kind = "clustering"
        rows = { min = 3, max = 40 }
        "#,
    );
    let built = build_all(&data, 1, 0).unwrap();
    let (c, p) = (&built[0].1, &built[1].1);
    let mut rows = std::collections::BTreeMap::<i64, std::collections::BTreeSet<i64>>::new();
    for i in 0..40 * 50 {
        let (Value::Int(pv), Value::Int(cv)) = (p.value(1, 1, i), c.value(1, 0, i)) else {
            panic!("integers")
        };
        assert_eq!(pv, 100 + (i / 40) as i64, "partition {i}: in op order");
        rows.entry(pv).or_default().insert(cv);
    }
    assert_eq!(rows.len(), 50);
    let sizes: std::collections::BTreeSet<usize> = rows.values().map(|r| r.len()).collect();
    for (pv, r) in &rows {
        let want = partition_rows((pv - 100) as u64, 3, 40) as usize;
        assert_eq!(r.len(), want, "partition {pv}");
        assert_eq!(*r, (0..want as i64).collect(), "rows 0..size");
    }
    assert!(sizes.len() > 10, "sizes vary: {sizes:?}");
}
