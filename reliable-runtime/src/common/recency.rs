//! Bounded tables that forget their least recently used entries a tenth at a time: the health
//! endpoints' clients, a keyed limiter's keys, the local ids of a dedup store. Forgetting a
//! tenth at once makes a flood of new entries pay one scan per tenth, not one per entry.

/// How many entries a full table of `capacity` forgets at once: a tenth, one at least.
pub(crate) fn tenth(capacity: usize) -> usize {
    (capacity / 10).max(1)
}

/// The recency at or below which `forget` entries are (the `forget`-th least recent of
/// `recencies`); `None` when there are none to forget. The caller keeps the entries more
/// recent than it (`retain(|.., seen| seen > cutoff)`); ties at the cutoff go too.
pub(crate) fn cutoff<T: Ord + Copy>(
    recencies: impl Iterator<Item = T>,
    forget: usize,
) -> Option<T> {
    if forget == 0 {
        return None;
    }
    let mut recencies: Vec<T> = recencies.collect();
    if recencies.is_empty() {
        return None;
    }
    let at = forget.min(recencies.len()) - 1;
    let (_, &mut cutoff, _) = recencies.select_nth_unstable(at);
    Some(cutoff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cutoff_is_the_forget_th_least_recent() {
        assert_eq!(cutoff([5u64, 1, 9, 3, 7].into_iter(), 2), Some(3));
        assert_eq!(
            cutoff([5u64, 1].into_iter(), 9),
            Some(5),
            "more than there are: all"
        );
        assert_eq!(cutoff(std::iter::empty::<u64>(), 1), None);
        assert_eq!(cutoff([1u64].into_iter(), 0), None);
        assert_eq!((tenth(5), tenth(100)), (1, 10));
    }
}
