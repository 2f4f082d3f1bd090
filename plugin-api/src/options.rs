//! Settings as key/value text, so that a new setting never changes the ABI.

use abi_stable::{
    StableAbi,
    std_types::{RString, RVec},
};

#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: RString,
    pub value: RString,
}

/// Key/value settings: for `open`, the model's sidecar `[options]` table; for a prediction,
/// the label config's `model_*` attributes and the host's per-request settings. Keys the
/// adapter does not know are for someone else: ignore them.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    pub entries: RVec<KeyValue>,
}

impl Options {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key` (replacing an earlier value).
    pub fn set(&mut self, key: &str, value: impl ToString) {
        let value = RString::from(value.to_string());
        match self.entries.iter_mut().find(|e| e.key.as_str() == key) {
            Some(entry) => entry.value = value,
            None => self.entries.push(KeyValue {
                key: RString::from(key),
                value,
            }),
        }
    }

    pub fn with(mut self, key: &str, value: impl ToString) -> Self {
        self.set(key, value);
        self
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|e| e.key.as_str() == key)
            .map(|e| e.value.as_str())
    }

    /// A value parsed as `T`; None when it is missing or does not parse.
    pub fn parse<T: std::str::FromStr>(&self, key: &str) -> Option<T> {
        self.get(key)?.trim().parse().ok()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|e| (e.key.as_str(), e.value.as_str()))
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl<K: ToString, V: ToString> FromIterator<(K, V)> for Options {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut options = Options::new();
        for (k, v) in iter {
            options.set(&k.to_string(), v);
        }
        options
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_values_replace_earlier_ones_and_parse() {
        let mut o: Options = [("conf", "0.5"), ("tracker", "botsort")].into_iter().collect();
        o.set("conf", 0.25);
        assert_eq!(o.parse::<f32>("conf"), Some(0.25));
        assert_eq!(o.get("tracker"), Some("botsort"));
        assert_eq!(o.parse::<f32>("tracker"), None);
        assert_eq!(o.iter().count(), 2);
    }
}
