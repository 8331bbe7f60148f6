# Sourced by the wasm build scripts: points cargo at Debian's rustc-web for wasm32 only.
# (Host builds and tests keep rustup's stable toolchain.)
LLVM=$(/usr/bin/rustc -vV | sed -n 's/^LLVM version: \([0-9]*\).*/\1/p')
export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=/usr/lib/llvm-$LLVM/bin/wasm-ld
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS='--cfg getrandom_backend="wasm_js" -D warnings'
unset RUSTFLAGS CARGO_ENCODED_RUSTFLAGS
# A separate target dir: artifacts of two compilers never mix.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR_WASM:-$(pwd)/target/wasm}"
