#!/usr/bin/env node
// The installed `armada` command: runs the built CLI (pnpm --filter @armada/cli build).
import '../dist/bin.js';
