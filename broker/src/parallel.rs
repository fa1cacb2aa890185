//! Blocking work spread over a few threads: opening the logs at start and
//! closing them at shutdown wait on the disk one log at a time, so a broker
//! holding thousands of replicas does them side by side, on
//! `num.recovery.threads.per.data.dir` threads per log directory as Kafka
//! does.

use std::sync::atomic::{AtomicUsize, Ordering};

/// `work` applied to each of `items` on up to `threads` threads (the
/// caller's among them; at least that one), the results in the order of
/// `items`. A panic in `work` is raised again here.
pub fn map<T: Sync, R: Send>(items: &[T], threads: usize, work: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let run = || {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(item) = items.get(i) else {
                return done;
            };
            done.push((i, work(item)));
        }
    };
    let mut results = std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..threads.min(items.len()))
            .map(|_| scope.spawn(run))
            .collect();
        let mut all = run();
        for helper in helpers {
            all.extend(
                helper
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            );
        }
        all
    });
    results.sort_unstable_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::Mutex;
    use std::thread::ThreadId;

    use super::*;

    #[test]
    fn each_item_once_in_order_whatever_the_threads() {
        for (items, threads) in [
            (0, 0),
            (0, 4),
            (1, 0),
            (1, 4),
            (5, 1),
            (5, 2),
            (100, 3),
            (7, 50),
        ] {
            let input: Vec<usize> = (0..items).collect();
            let seen = Mutex::new(HashSet::<ThreadId>::new());
            let out = map(&input, threads, |i| {
                seen.lock()
                    .expect("lock")
                    .insert(std::thread::current().id());
                i * 2
            });
            let want: Vec<usize> = (0..items).map(|i| i * 2).collect();
            assert_eq!(out, want, "{items} items on {threads} threads");
            let used = seen.into_inner().expect("lock").len();
            assert!(
                used <= threads.max(1),
                "{items} items used {used} threads, asked {threads}"
            );
        }
    }

    #[test]
    fn a_panic_in_the_work_reaches_the_caller() {
        let input: Vec<usize> = (0..20).collect();
        let caught =
            std::panic::catch_unwind(|| map(&input, 3, |i| assert_ne!(*i, 13, "the unlucky one")));
        assert!(caught.is_err());
    }
}
