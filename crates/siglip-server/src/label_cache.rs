//! `LabelCache`: text embeddings keyed by the final prompt (template applied), LRU-bounded,
//! so a request whose labels were seen before runs only the image tower.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use lru::LruCache;

/// A shared, bounded prompt -> embedding map. Capacity 0 disables it.
#[derive(Debug)]
pub struct LabelCache {
    /// `None` when disabled. The lock is held only for a lookup or an insert, never across
    /// an await or a model call.
    entries: Option<Mutex<LruCache<String, Arc<[f32]>>>>,
}

impl LabelCache {
    /// A cache holding at most `capacity` prompts.
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: NonZeroUsize::new(capacity).map(|c| Mutex::new(LruCache::new(c))),
        }
    }

    /// The cached embedding of `prompt`, marking it recently used.
    pub fn get(&self, prompt: &str) -> Option<Arc<[f32]>> {
        let entries = self.entries.as_ref()?;
        entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(prompt)
            .cloned()
    }

    /// Remembers `prompt`'s embedding, evicting the least recently used one when full.
    pub fn insert(&self, prompt: String, embedding: Arc<[f32]>) {
        if let Some(entries) = &self.entries {
            entries
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .put(prompt, embedding);
        }
    }

    /// Whether `prompt` is cached, without marking it used.
    pub fn contains(&self, prompt: &str) -> bool {
        self.entries.as_ref().is_some_and(|entries| {
            entries
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(prompt)
        })
    }

    /// Prompts held now.
    pub fn len(&self) -> usize {
        self.entries
            .as_ref()
            .map_or(0, |e| e.lock().unwrap_or_else(|e| e.into_inner()).len())
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_the_least_recently_used() {
        let cache = LabelCache::new(2);
        cache.insert("a".into(), Arc::from(vec![1.0]));
        cache.insert("b".into(), Arc::from(vec![2.0]));
        assert!(cache.get("a").is_some());
        cache.insert("c".into(), Arc::from(vec![3.0]));
        assert!(cache.get("b").is_none(), "b was least recently used");
        assert_eq!(cache.get("a").unwrap()[0], 1.0);
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn capacity_zero_disables() {
        let cache = LabelCache::new(0);
        cache.insert("a".into(), Arc::from(vec![1.0]));
        assert!(cache.get("a").is_none() && cache.is_empty());
    }
}
