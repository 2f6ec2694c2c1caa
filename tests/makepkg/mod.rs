//! makepkg's download agent (`src/makepkg/`, `commands::dlagent`): real makepkg, as an
//! unprivileged builder, getting a PKGBUILD's sources from IPFS by their sums (`sources`).

pub(crate) mod sources;
