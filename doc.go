// Package sipedge only carries the appliance's default configuration,
// config.toml at the repository root, embedded so that the binary runs
// without a file and the documented defaults are the ones it uses. The code
// lives in the sub-packages (see DESIGN.md).
//
// sipedge must not import any package: everything else may import it, and
// it holds nothing but the embedded file.
package sipedge
