//! pacman's world: the URL pacman passes (`target`), its rule for names (`names`), and what
//! `pacman-conf` says of pacman.conf (`conf`) with its answers remembered across calls
//! (`conf_cache`). Uses only `ui` and `cache`.

pub mod conf;
pub mod conf_cache;
pub mod names;
pub mod target;
