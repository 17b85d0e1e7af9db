/**
 * The gateway's version: `version` of the package.json this code belongs to, found by walking
 * up from this file (the same from the sources, gateway/core/, and from the build, dist/gateway/core/).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';

let cached: string | null = null;

export function gatewayVersion(): string {
  if (cached !== null) return cached;
  for (let dir = import.meta.dirname; ; dir = path.dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'partner-gateway' && pkg.version) return (cached = pkg.version);
    } catch {
      /* no package.json here: go up */
    }
    if (path.dirname(dir) === dir) return (cached = 'unknown');
  }
}
