//! `pacxfer prefetch` (`src/prefetch/`): an upgrade fetched ahead of pacman (`upgrade`).

pub(crate) mod upgrade;
