//! [`ByStep`]: what an executor learned at submit about some of its steps
//! (the image their tasks run in), looked up by step name when a job of
//! one of them is started.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// Values shared by steps, by step name; safe to use from several tasks.
#[derive(Debug)]
pub struct ByStep<T>(Mutex<HashMap<String, Arc<T>>>);

impl<T> Default for ByStep<T> {
    fn default() -> Self {
        Self(Mutex::new(HashMap::new()))
    }
}

impl<T> ByStep<T> {
    /// Gives each of `steps` the one `value`.
    pub fn set(&self, steps: &[String], value: T) {
        let value = Arc::new(value);
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        for step in steps {
            map.insert(step.clone(), Arc::clone(&value));
        }
    }

    /// The value of `step`, if it has one.
    pub fn of(&self, step: &str) -> Option<Arc<T>> {
        let map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(step).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_set_together_share_one_value_and_others_have_none() {
        let by = ByStep::default();
        by.set(&["a".to_owned(), "b".to_owned()], 7);
        let (a, b) = (by.of("a").unwrap(), by.of("b").unwrap());
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(*a, 7);
        assert!(by.of("c").is_none());
    }
}
