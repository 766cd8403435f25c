//! The bag codes of the benchmark: parents `SB00000`…`SB99999` (the default
//! parent format, 30 children each), children numbered from their parent
//! (`C` and ten digits: parent × 30 + slot), and new parents handed out one at
//! a time so that no two stations ever scan into the same parent.

use std::sync::atomic::{AtomicU32, Ordering};

/// Children a parent of the default `SB` format holds.
pub const CAPACITY: u32 = 30;
/// Children of each seeded parent: one short of full.
pub const SEEDED_CHILDREN: u32 = 29;
/// The last parent number the `SB[0-9]{5}` format has.
pub const LAST_PARENT: u32 = 99_999;

/// The code of parent number `n`.
pub fn parent(n: u32) -> String {
    format!("SB{n:05}")
}

/// The code of the child in `slot` (1 to 30) of parent number `parent`.
pub fn child(parent: u32, slot: u32) -> String {
    format!(
        "C{:010}",
        u64::from(parent) * u64::from(CAPACITY) + u64::from(slot)
    )
}

/// Parent numbers not used yet, handed out in turn to whoever needs a new parent.
#[derive(Debug)]
pub struct NewParents {
    next: AtomicU32,
}

impl NewParents {
    /// New parents start after the `seeded` ones.
    pub fn after(seeded: u32) -> NewParents {
        NewParents {
            next: AtomicU32::new(seeded),
        }
    }

    /// The next unused parent number; `None` once `SB99999` is taken.
    pub fn take(&self) -> Option<u32> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        (n <= LAST_PARENT).then_some(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_of_different_parents_never_share_a_code() {
        assert_eq!(child(0, 1), "C0000000001");
        assert_eq!(child(0, 30), "C0000000030");
        assert_eq!(child(1, 1), "C0000000031");
        assert_eq!(child(LAST_PARENT, 30), "C0003000000");
        assert_eq!(parent(60_000), "SB60000");
    }

    #[test]
    fn parents_run_out_after_sb99999() {
        let p = NewParents::after(LAST_PARENT);
        assert_eq!(p.take(), Some(LAST_PARENT));
        assert_eq!(p.take(), None);
    }
}
