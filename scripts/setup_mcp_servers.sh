#!/usr/bin/env bash
# Installs the MCP servers the MCP plugin tests, example and benchmark use, at pinned versions,
# into .cache/mcp-servers (gitignored; no package.json at the repo root).
# Run from anywhere: bash scripts/setup_mcp_servers.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
prefix="$root/.cache/mcp-servers"
everything="@modelcontextprotocol/server-everything@2026.8.31"
filesystem="@modelcontextprotocol/server-filesystem@2026.8.31"
marker="$prefix/.installed"
want="$everything $filesystem"
if [[ -f "$marker" && "$(cat "$marker")" == "$want" &&
      -f "$prefix/node_modules/@modelcontextprotocol/server-everything/package.json" &&
      -f "$prefix/node_modules/@modelcontextprotocol/server-filesystem/package.json" ]]; then
  echo "MCP servers already installed in $prefix"
  exit 0
fi
mkdir -p "$prefix"
npm install --no-save --no-audit --no-fund --loglevel=error --prefix "$prefix" $want
printf '%s' "$want" > "$marker"
echo "MCP servers installed in $prefix"
