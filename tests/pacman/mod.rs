//! pacman's world (`src/pacman/`), end to end with the real pacman: 6.0 (`pacman6`) and
//! 7.0 in its root (`pacman7`), failover across Server lines (`failover`), and unchanged
//! databases by If-Modified-Since (`unchanged`).

pub(crate) mod failover;
pub(crate) mod pacman6;
pub(crate) mod pacman7;
pub(crate) mod unchanged;
