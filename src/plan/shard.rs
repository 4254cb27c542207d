//! How one instance's share of a workload is cut out: op counts and rates are divided with
//! exact remainders, and op numbers map to disjoint parts of the workload's op indices.

/// Maps this shard's op numbers (0, 1, 2, ...) to the workload's op indices, which feed every
/// generator. Disjoint across the shards of one workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexMap {
    /// Op `k` is index `offset + k`: used with an op count, so that a populate-style sequence
    /// gives each shard one contiguous range of keys.
    Contiguous { offset: u64 },
    /// Op `k` is index `k * stride + offset`: used for runs without a count.
    Interleaved { stride: u64, offset: u64 },
}

impl IndexMap {
    #[inline]
    pub fn index(self, k: u64) -> u64 {
        match self {
            IndexMap::Contiguous { offset } => offset + k,
            IndexMap::Interleaved { stride, offset } => k * stride + offset,
        }
    }

    /// The op number whose index is `index`: the inverse of [`IndexMap::index`], `None` for an
    /// index of another shard.
    #[inline]
    pub fn position(self, index: u64) -> Option<u64> {
        match self {
            IndexMap::Contiguous { offset } => index.checked_sub(offset),
            IndexMap::Interleaved { stride, offset } => {
                let d = index.checked_sub(offset)?;
                (d % stride == 0).then_some(d / stride)
            }
        }
    }
}

/// Shard `index` of `count` gets this many of `total` ops, and the first of them is at
/// `offset`: the first `total % count` shards take one op more, so the shares add up exactly.
pub fn share(total: u64, index: u32, count: u32) -> (u64, u64) {
    let (i, n) = (index as u64, count as u64);
    let base = total / n;
    let extra = total % n;
    let len = base + u64::from(i < extra);
    let offset = i * base + i.min(extra);
    (len, offset)
}

/// Where `"auto"` finds the pod ordinal.
#[derive(Debug, Clone, Default)]
pub struct ShardEnv {
    /// `CQLPULSE_POD_INDEX` (the `apps.kubernetes.io/pod-index` label via the downward API).
    pub pod_index: Option<String>,
    /// The host name; a StatefulSet pod is named `<set>-<ordinal>`.
    pub hostname: Option<String>,
}

impl ShardEnv {
    pub fn from_process() -> ShardEnv {
        ShardEnv {
            pod_index: std::env::var("CQLPULSE_POD_INDEX").ok(),
            hostname: std::env::var("HOSTNAME")
                .ok()
                .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
                .map(|h| h.trim().to_string()),
        }
    }

    /// The ordinal, or why there is none. An empty `CQLPULSE_POD_INDEX` counts as unset:
    /// the downward API gives `""` for a label a pod lacks (the pod-index label before
    /// Kubernetes 1.28), and the host name still has the ordinal.
    pub fn ordinal(&self) -> Result<u32, String> {
        if let Some(p) = self.pod_index.as_deref().filter(|p| !p.trim().is_empty()) {
            return p
                .trim()
                .parse()
                .map_err(|_| format!("CQLPULSE_POD_INDEX `{p}` is not a non-negative integer"));
        }
        let host = self.hostname.as_deref().unwrap_or("");
        host.rsplit_once('-')
            .and_then(|(_, n)| n.parse().ok())
            .ok_or_else(|| {
                format!(
                    "\"auto\" needs CQLPULSE_POD_INDEX or a host name ending in -<ordinal>, \
                     and the host name is `{host}`"
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_are_disjoint_and_add_up() {
        for (total, count) in [(10u64, 3u32), (2, 5), (1_000_001, 7)] {
            let mut next = 0;
            let mut sum = 0;
            for i in 0..count {
                let (len, offset) = share(total, i, count);
                assert_eq!(
                    offset,
                    next,
                    "shard {i} starts where {} ended",
                    i.wrapping_sub(1)
                );
                next = offset + len;
                sum += len;
            }
            assert_eq!(sum, total);
        }
    }

    #[test]
    fn interleaved_indices_are_disjoint() {
        let a = IndexMap::Interleaved {
            stride: 3,
            offset: 0,
        };
        let b = IndexMap::Interleaved {
            stride: 3,
            offset: 1,
        };
        let xs: std::collections::HashSet<u64> = (0..100).map(|k| a.index(k)).collect();
        assert!((0..100).all(|k| !xs.contains(&b.index(k))));
        // `position` undoes `index`, and finds nothing for another shard's index.
        for k in 0..100 {
            assert_eq!(a.position(a.index(k)), Some(k));
            assert_eq!(a.position(b.index(k)), None);
        }
        let c = IndexMap::Contiguous { offset: 50 };
        assert_eq!(c.position(c.index(7)), Some(7));
        assert_eq!(c.position(49), None);
    }

    #[test]
    fn ordinal_comes_from_the_pod_index_or_the_host_name() {
        let env = ShardEnv {
            pod_index: None,
            hostname: Some("cqlpulse-2".into()),
        };
        assert_eq!(env.ordinal(), Ok(2));
        let env = ShardEnv {
            pod_index: Some("4".into()),
            hostname: Some("x-1".into()),
        };
        assert_eq!(env.ordinal(), Ok(4));
        let env = ShardEnv {
            pod_index: None,
            hostname: Some("laptop".into()),
        };
        assert!(env.ordinal().unwrap_err().contains("laptop"));
    }

    #[test]
    fn an_empty_pod_index_falls_back_to_the_host_name() {
        // Kubernetes < 1.28: the downward API sets the variable to "" (no pod-index label).
        for empty in ["", "  "] {
            let env = ShardEnv {
                pod_index: Some(empty.into()),
                hostname: Some("cqlpulse-7".into()),
            };
            assert_eq!(env.ordinal(), Ok(7), "pod index {empty:?}");
        }
        let env = ShardEnv {
            pod_index: Some(String::new()),
            hostname: Some("laptop".into()),
        };
        assert!(env.ordinal().unwrap_err().contains("laptop"));
        let env = ShardEnv {
            pod_index: Some("x".into()),
            hostname: Some("cqlpulse-7".into()),
        };
        assert!(env.ordinal().unwrap_err().contains("`x`"));
    }
}
