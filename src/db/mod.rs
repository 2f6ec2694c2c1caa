//! The sync databases: one package's entry, the rules it is held to and the one match rule
//! (`entry`), a `desc` member (`desc`), the bounded tar reader (`tar`), reading and searching
//! the databases (`syncdb`), the per-database index that answers a search without reading
//! a database (`index`), and a database's canonical form with the steps between two of its
//! versions (`canonical`, for update lists). `entry` is below both `syncdb` and `index`, which use it; `syncdb`
//! asks `index` first. Uses `ui`, `cache` and `pacman`'s name rule.

pub mod canonical;
pub mod desc;
pub mod entry;
pub mod index;
pub mod syncdb;
pub mod tar;
