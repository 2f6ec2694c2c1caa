//! One file's transfer: the ordered list of sources for it (`plan`, pure: `lookup` prints
//! exactly what a download would try), the main loop that walks them (`download`, with the
//! failures it tells apart and `into_file` for a file of its own), the verdict on the bytes
//! (`verify`), the output file that hashes exactly what it holds (`output`), partial downloads
//! kept across calls (`partial`), and the log of completed downloads (`log`). Uses every layer
//! below: `ui`, `cache`, `pacman`, `db`, `http`, `ipfs`, `config`, `sources`.

pub mod download;
pub mod log;
pub mod output;
pub mod partial;
pub mod plan;
pub mod verify;
