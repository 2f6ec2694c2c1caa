//! The commands as a user runs them (`src/commands/`): the command line and bad input
//! (`cli`), `doctor` and `stats` (`doctor`), hostile input to the newer commands
//! (`hardening`), every promise of the README and pacxfer.conf(5) (`promises`), and the Arch
//! package built with makepkg (`package`).

pub(crate) mod cli;
pub(crate) mod doctor;
pub(crate) mod hardening;
pub(crate) mod package;
pub(crate) mod promises;
