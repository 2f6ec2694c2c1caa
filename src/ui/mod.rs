//! What the user sees, and text from outside on its way in: `shown` (masked and escaped text,
//! the one way anything reaches a terminal or a file), `progress` (bars and lines, sizes and
//! durations) and `answer` (answers from the node, a cluster, a log or stdin read with bounded
//! memory; JSON output escaped like text). The lowest layer: it uses nothing else of pacxfer's.

pub mod answer;
pub mod progress;
pub mod shown;
