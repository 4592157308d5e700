//! Work spread over the machine's cores: both ends merge a page of
//! documents at a time, and each document's merge is independent CPU work.

/// Threads one page's work is spread over, at most.
pub const THREADS_MAX: usize = 4;

/// Maps `f` over `items` on the machine's cores (at most [`THREADS_MAX`]),
/// keeping order. `None` if a worker panicked (a bug), so that no result is
/// ever misattributed.
pub fn parallel_map<T: Send, R: Send>(items: Vec<T>, f: impl Fn(T) -> R + Sync) -> Option<Vec<R>> {
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).min(THREADS_MAX);
    if threads <= 1 || items.len() < 2 {
        return Some(items.into_iter().map(f).collect());
    }
    let per = items.len().div_ceil(threads);
    let mut chunks: Vec<Vec<T>> = Vec::new();
    let mut it = items.into_iter();
    loop {
        let c: Vec<T> = it.by_ref().take(per).collect();
        if c.is_empty() {
            break;
        }
        chunks.push(c);
    }
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> =
            chunks.into_iter().map(|c| s.spawn(move || c.into_iter().map(f).collect::<Vec<R>>())).collect();
        let mut out = Vec::new();
        for h in handles {
            out.extend(h.join().ok()?);
        }
        Some(out)
    })
}

#[cfg(test)]
mod tests {
    use super::parallel_map;

    #[test]
    fn keeps_order_whatever_the_split() {
        for n in [0, 1, 2, 3, 7, 100, 1001] {
            let items: Vec<usize> = (0..n).collect();
            let out = parallel_map(items, |i| i * 2).expect("no worker panics");
            assert_eq!(out, (0..n).map(|i| i * 2).collect::<Vec<_>>());
        }
    }
}
