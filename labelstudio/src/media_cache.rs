//! A small in-memory cache of downloaded images, keyed by URL and bounded in bytes, so that
//! asking for predictions on the same tasks again (another model version, a retry after an
//! error) does not download every image again.

use parking_lot::Mutex;

use bytes::Bytes;
use lru::LruCache;

pub struct MediaCache {
    capacity: u64,
    inner: Mutex<Inner>,
}

struct Inner {
    /// Bounded by bytes below, not by count, so the LRU itself is unbounded.
    entries: LruCache<String, Bytes>,
    bytes: u64,
}

impl MediaCache {
    pub fn new(capacity: u64) -> Self {
        Self {
            capacity,
            inner: Mutex::new(Inner {
                entries: LruCache::unbounded(),
                bytes: 0,
            }),
        }
    }

    pub fn get(&self, key: &str) -> Option<Bytes> {
        let mut inner = self.inner.lock();
        inner.entries.get(key).cloned()
    }

    pub fn insert(&self, key: &str, bytes: Bytes) {
        let size = bytes.len() as u64;
        // One huge image must not flush everything else.
        if size == 0 || size > self.capacity / 4 {
            return;
        }
        let mut inner = self.inner.lock();
        if let Some(old) = inner.entries.pop(key) {
            inner.bytes -= old.len() as u64;
        }
        while inner.bytes + size > self.capacity {
            let Some((_, oldest)) = inner.entries.pop_lru() else {
                break;
            };
            inner.bytes -= oldest.len() as u64;
        }
        inner.bytes += size;
        inner.entries.put(key.to_string(), bytes);
    }

    #[cfg(test)]
    fn bytes(&self) -> u64 {
        self.inner.lock().bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(n: usize) -> Bytes {
        Bytes::from(vec![7u8; n])
    }

    #[test]
    fn evicts_the_least_recently_used() {
        let cache = MediaCache::new(100);
        cache.insert("a", blob(25));
        cache.insert("b", blob(25));
        cache.insert("c", blob(25));
        cache.insert("d", blob(25));
        assert!(cache.get("a").is_some(), "a is now the most recent");
        cache.insert("e", blob(25));
        assert!(cache.get("b").is_none(), "b was the least recently used");
        for key in ["a", "c", "d", "e"] {
            assert!(cache.get(key).is_some(), "{key} stays");
        }
        assert_eq!(cache.bytes(), 100);
    }

    #[test]
    fn replacing_a_key_keeps_the_count_right() {
        let cache = MediaCache::new(100);
        cache.insert("a", blob(20));
        cache.insert("a", blob(10));
        assert_eq!(cache.bytes(), 10);
        assert_eq!(cache.get("a").map(|b| b.len()), Some(10));
    }

    #[test]
    fn large_and_empty_blobs_are_not_cached() {
        let cache = MediaCache::new(100);
        cache.insert("big", blob(26));
        cache.insert("empty", blob(0));
        assert!(cache.get("big").is_none());
        assert!(cache.get("empty").is_none());
        let off = MediaCache::new(0);
        off.insert("a", blob(1));
        assert!(off.get("a").is_none());
    }
}
