//! Dense numeric ids: indexes into the vectors of a [`crate::Plan`].

use serde::Serialize;
use std::fmt;

macro_rules! dense_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(pub u32);

        impl $name {
            /// The id as an index into its vector.
            pub fn index(self) -> usize {
                self.0 as usize
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

dense_id!(
    /// A task of a plan; tasks of one step have consecutive ids.
    TaskId
);
dense_id!(
    /// A step of a plan, in the workflow file's order.
    StepId
);
dense_id!(
    /// An executor of a plan, in the workflow file's order.
    ExecutorId
);
