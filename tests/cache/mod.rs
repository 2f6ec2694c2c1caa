//! The trust rule (`src/cache/`) and running as another user: caches, outputs and
//! answers nobody less privileged could have changed (`trust`), pacman 7's download user and
//! runuser (`privilege`).

pub(crate) mod privilege;
pub(crate) mod trust;
