#!/usr/bin/env node
// The `pgw` executable: loads the TypeScript sources through tsx (no build step).
import { register } from 'tsx/esm/api';

register();
await import('../gateway/cli.ts');
