#!/usr/bin/env bash
# `make install PREFIX=...` gives a library, headers, program and leantrain.pc with
# which the example builds by `pkg-config --cflags --libs leantrain` and runs.
set -u
BUILD=${BUILD:-build}
if [ "$BUILD" != build ]; then echo "skipped under $BUILD (sanitizer builds are not installed)"; exit 0; fi
tmp=$(mktemp -d "${LT_TEST_TMP:-build/tmp}/install.XXXXXX")
tmp=$(cd "$tmp" && pwd)
make --no-print-directory -s install PREFIX="$tmp/prefix" >/dev/null || { echo "make install failed"; exit 1; }
for f in lib/libleantrain.a lib/libleantrain.so include/leantrain/optim.h bin/leantrain lib/pkgconfig/leantrain.pc; do
    [ -e "$tmp/prefix/$f" ] || { echo "missing $f"; exit 1; }
done
export PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig"
cc -std=c11 -o "$tmp/train_mlp" examples/train_mlp.c $(pkg-config --cflags --libs leantrain) || { echo "build against install failed"; exit 1; }
LD_LIBRARY_PATH="$tmp/prefix/lib" "$tmp/train_mlp" adamw_torch || { echo "installed example failed"; exit 1; }
"$tmp/prefix/bin/leantrain" optimizers >/dev/null || exit 1
rm -rf "$tmp"
