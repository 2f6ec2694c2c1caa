//! The sync databases (`src/db/`): the index (`index`) and the readers fuzzed (`fuzz`).

pub(crate) mod fuzz;
pub(crate) mod index;
