//! The hierarchy access rule `CanCommunicate` (api-contract §3) and the
//! in-memory parent map it walks. The map is filled from the store on a miss
//! and kept current by the only writers of `parent_id` (create, register,
//! PATCH), so WebSocket fan-out checks cost no database round trip.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use uuid::Uuid;

use molecule_store::{Store, StoreError};

/// Maximum number of parent hops the rule walks.
pub const MAX_HOPS: usize = 32;

/// The pure rule. `parent_of(id)` is `None` for an unknown workspace and
/// `Some(None)` for a root.
pub fn can_communicate(
    caller: Uuid,
    target: Uuid,
    parent_of: impl Fn(Uuid) -> Option<Option<Uuid>>,
) -> bool {
    if caller == target {
        return true;
    }
    let (Some(caller_parent), Some(target_parent)) = (parent_of(caller), parent_of(target)) else {
        return false;
    };
    match (caller_parent, target_parent) {
        (Some(a), Some(b)) if a == b => return true,
        (None, None) => return true,
        _ => {}
    }
    is_ancestor(caller, target_parent, &parent_of) || is_ancestor(target, caller_parent, &parent_of)
}

/// One hop apart in the org chart: parent and child either way, or
/// siblings (two roots are siblings). The workspaces a peers list shows.
pub fn directly_related(
    a: Uuid,
    b: Uuid,
    parent_of: impl Fn(Uuid) -> Option<Option<Uuid>>,
) -> bool {
    let (Some(pa), Some(pb)) = (parent_of(a), parent_of(b)) else {
        return false;
    };
    pa == Some(b) || pb == Some(a) || pa == pb
}

/// Whether `ancestor` is found walking up from `start` (inclusive).
fn is_ancestor(
    ancestor: Uuid,
    mut start: Option<Uuid>,
    parent_of: &impl Fn(Uuid) -> Option<Option<Uuid>>,
) -> bool {
    for _ in 0..MAX_HOPS {
        let Some(cur) = start else { return false };
        if cur == ancestor {
            return true;
        }
        match parent_of(cur) {
            Some(p) => start = p,
            None => return false,
        }
    }
    false
}

/// Cached `id → parent_id` for every workspace row (removed included, as the
/// rule ignores status).
#[derive(Clone)]
pub struct Hierarchy {
    store: Arc<dyn Store>,
    parents: Arc<RwLock<HashMap<Uuid, Option<Uuid>>>>,
}

impl Hierarchy {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            parents: Arc::default(),
        }
    }

    /// Load the whole map (start-up).
    pub async fn warm(&self) -> Result<(), StoreError> {
        let all = self.store.workspace_hierarchy().await?;
        if let Ok(mut map) = self.parents.write() {
            map.extend(all);
        }
        Ok(())
    }

    pub fn set_parent(&self, id: Uuid, parent: Option<Uuid>) {
        if let Ok(mut map) = self.parents.write() {
            map.insert(id, parent);
        }
    }

    /// Drop `id`'s cached parent: the next check reads it again (another
    /// replica changed it).
    pub fn forget(&self, id: Uuid) {
        if let Ok(mut map) = self.parents.write() {
            map.remove(&id);
        }
    }

    /// Drop the whole map (changes may have been missed).
    pub fn forget_all(&self) {
        if let Ok(mut map) = self.parents.write() {
            map.clear();
        }
    }

    fn cached(&self, id: Uuid) -> Option<Option<Uuid>> {
        self.parents.read().ok().and_then(|m| m.get(&id).copied())
    }

    /// Make sure `id` and its ancestors are in the map.
    async fn load_chain(&self, mut id: Uuid) -> Result<(), StoreError> {
        for _ in 0..MAX_HOPS {
            let parent = match self.cached(id) {
                Some(p) => p,
                None => match self.store.workspace_parent(id).await? {
                    Some(p) => {
                        self.set_parent(id, p);
                        p
                    }
                    None => return Ok(()),
                },
            };
            match parent {
                Some(p) => id = p,
                None => return Ok(()),
            }
        }
        Ok(())
    }

    /// `CanCommunicate(caller, target)`; any lookup failure denies.
    pub async fn can_communicate(&self, caller: Uuid, target: Uuid) -> bool {
        if caller == target {
            return true;
        }
        if self.load_chain(caller).await.is_err() || self.load_chain(target).await.is_err() {
            return false;
        }
        let Ok(map) = self.parents.read() else {
            return false;
        };
        can_communicate(caller, target, |id| map.get(&id).copied())
    }

    /// [`directly_related`] on the cached map; any lookup failure denies.
    pub async fn directly_related(&self, a: Uuid, b: Uuid) -> bool {
        if self.load_chain(a).await.is_err() || self.load_chain(b).await.is_err() {
            return false;
        }
        let Ok(map) = self.parents.read() else {
            return false;
        };
        directly_related(a, b, |id| map.get(&id).copied())
    }

    /// Whether `ancestor` is a strict ancestor of `id` (cycle check for PATCH).
    pub async fn is_strict_ancestor(&self, ancestor: Uuid, id: Uuid) -> Result<bool, StoreError> {
        self.load_chain(id).await?;
        let Ok(map) = self.parents.read() else {
            return Ok(false);
        };
        let start = map.get(&id).copied().flatten();
        Ok(is_ancestor(ancestor, start, &|x| map.get(&x).copied()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// root1 ─┬─ a ─┬─ a1 ── a1x
    ///        │     └─ a2
    ///        └─ b ─── b1
    /// root2 ─── c
    #[test]
    fn access_matrix_follows_the_contract() {
        let ids: HashMap<&str, Uuid> = ["root1", "root2", "a", "b", "a1", "a2", "b1", "a1x", "c"]
            .iter()
            .map(|n| (*n, Uuid::new_v4()))
            .collect();
        let parent: HashMap<Uuid, Option<Uuid>> = [
            ("root1", None),
            ("root2", None),
            ("a", Some("root1")),
            ("b", Some("root1")),
            ("a1", Some("a")),
            ("a2", Some("a")),
            ("b1", Some("b")),
            ("a1x", Some("a1")),
            ("c", Some("root2")),
        ]
        .iter()
        .map(|(k, p)| (ids[k], p.map(|p| ids[p])))
        .collect();
        let unknown = Uuid::new_v4();
        let check = |x: &str, y: &str| {
            let id = |n: &str| if n == "unknown" { unknown } else { ids[n] };
            can_communicate(id(x), id(y), |i| parent.get(&i).copied())
        };
        let cases = [
            ("a", "a", true, "self"),
            ("a1", "a2", true, "siblings"),
            ("root1", "root2", true, "roots"),
            ("a", "a1", true, "parent to child"),
            ("a1", "a", true, "child to parent"),
            ("root1", "a1x", true, "skip-level ancestor"),
            ("a1x", "root1", true, "skip-level descendant"),
            ("a1", "b1", false, "cousins"),
            ("a1", "b", false, "nephew to uncle"),
            ("b", "a1", false, "uncle to nephew"),
            ("a", "c", false, "cross tree below root"),
            ("root2", "a", false, "other root's child"),
            ("a", "unknown", false, "unknown target"),
            ("unknown", "a", false, "unknown caller"),
        ];
        for (x, y, want, why) in cases {
            assert_eq!(check(x, y), want, "{why}: {x} -> {y}");
        }
    }

    #[test]
    fn direct_relations_are_one_hop() {
        let (root1, root2, a, a1, a2, a1x, b) = (
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
        );
        let parent: HashMap<Uuid, Option<Uuid>> = [
            (root1, None),
            (root2, None),
            (a, Some(root1)),
            (b, Some(root1)),
            (a1, Some(a)),
            (a2, Some(a)),
            (a1x, Some(a1)),
        ]
        .into();
        let rel = |x, y| directly_related(x, y, |i| parent.get(&i).copied());
        let cases = [
            (a, a1, true, "parent to child"),
            (a1, a, true, "child to parent"),
            (a1, a2, true, "siblings"),
            (root1, root2, true, "roots"),
            (root1, a1, false, "grandparent"),
            (a1x, a, false, "grandchild"),
            (a1, b, false, "uncle"),
            (a, Uuid::new_v4(), false, "unknown"),
        ];
        for (x, y, want, why) in cases {
            assert_eq!(rel(x, y), want, "{why}");
        }
    }

    #[test]
    fn a_parent_cycle_does_not_loop_forever() {
        let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let parent: HashMap<Uuid, Option<Uuid>> =
            [(a, Some(b)), (b, Some(a)), (c, Some(Uuid::new_v4()))].into();
        assert!(!can_communicate(c, a, |i| parent.get(&i).copied()));
    }
}
