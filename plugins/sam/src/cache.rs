//! Image embeddings by image, least recently used first out, within a memory budget: the
//! encoder runs once per image, and every later click on it only runs the decoder.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex, PoisonError},
};

/// One image's embedding: the encoder's output tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Embedding {
    pub shape: Vec<i64>,
    pub values: Vec<f32>,
}

impl Embedding {
    fn bytes(&self) -> usize {
        self.values.len() * std::mem::size_of::<f32>()
    }
}

/// Which image an embedding belongs to: a 128-bit hash of its size and pixels. The cache
/// belongs to one loaded model, so a new model version starts empty.
pub type ImageKey = u128;

/// The hash of an image as the adapter receives it (EXIF orientation applied).
pub fn image_key(width: u32, height: u32, pixels: &[u8]) -> ImageKey {
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    hasher.update(&width.to_le_bytes());
    hasher.update(&height.to_le_bytes());
    hasher.update(pixels);
    hasher.digest128()
}

pub struct EmbeddingCache {
    budget: usize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<ImageKey, Arc<Embedding>>,
    /// Least recently used first.
    order: VecDeque<ImageKey>,
    bytes: usize,
}

impl EmbeddingCache {
    pub fn new(budget_bytes: usize) -> Self {
        Self {
            budget: budget_bytes,
            inner: Mutex::new(Inner::default()),
        }
    }

    pub fn get(&self, key: ImageKey) -> Option<Arc<Embedding>> {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let found = inner.entries.get(&key).cloned()?;
        inner.touch(key);
        Some(found)
    }

    /// Keeps the embedding unless it alone is over the budget; evicts the least recently
    /// used until everything fits.
    pub fn put(&self, key: ImageKey, embedding: Arc<Embedding>) {
        let size = embedding.bytes();
        if size > self.budget {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(old) = inner.entries.insert(key, embedding) {
            inner.bytes -= old.bytes();
        }
        inner.bytes += size;
        inner.touch(key);
        while inner.bytes > self.budget {
            let Some(oldest) = inner.order.pop_front() else {
                break;
            };
            if let Some(gone) = inner.entries.remove(&oldest) {
                inner.bytes -= gone.bytes();
            }
        }
    }

    /// (images, bytes) held now.
    pub fn usage(&self) -> (usize, usize) {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        (inner.entries.len(), inner.bytes)
    }
}

impl Inner {
    fn touch(&mut self, key: ImageKey) {
        if let Some(at) = self.order.iter().position(|k| *k == key) {
            self.order.remove(at);
        }
        self.order.push_back(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn embedding(floats: usize) -> Arc<Embedding> {
        Arc::new(Embedding {
            shape: vec![1, floats as i64],
            values: vec![0.5; floats],
        })
    }

    #[test]
    fn the_least_recently_used_goes_first_and_the_budget_holds() {
        let cache = EmbeddingCache::new(3 * 400);
        for key in 1..=3 {
            cache.put(key, embedding(100));
        }
        assert!(cache.get(1).is_some(), "1 is now the most recent");
        cache.put(4, embedding(100));
        assert!(cache.get(2).is_none(), "2 was the least recently used");
        assert!(cache.get(1).is_some() && cache.get(3).is_some() && cache.get(4).is_some());
        assert_eq!(cache.usage(), (3, 1200));
        cache.put(5, embedding(1000));
        assert!(cache.get(5).is_none(), "one embedding over the budget is not kept");
        assert_eq!(cache.usage(), (3, 1200));
        let off = EmbeddingCache::new(0);
        off.put(1, embedding(1));
        assert_eq!(off.usage(), (0, 0));
    }

    #[test]
    fn the_key_tells_images_apart_by_size_and_pixels() {
        let pixels = [1u8, 2, 3, 4, 5, 6];
        assert_eq!(image_key(2, 1, &pixels), image_key(2, 1, &pixels));
        assert_ne!(image_key(2, 1, &pixels), image_key(1, 2, &pixels));
        assert_ne!(image_key(2, 1, &pixels), image_key(2, 1, &[1, 2, 3, 4, 5, 7]));
    }
}
