/** Renders the environment settings as the README's config table (checked by a test). */
import { ENV_SETTINGS, loadConfig } from './config.js';

export function configTable(): string {
  const defaults = loadConfig({ env: {} }) as unknown as Record<string, unknown>;
  const get = (dotted: string): unknown => dotted.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], defaults);
  const shown = (s: (typeof ENV_SETTINGS)[number]): string => {
    if (s.env === 'PGW_DATA_DIR') return './var';
    if (s.env === 'PGW_DATABASE_URL') return 'sqlite:<PGW_DATA_DIR>/ledger.db';
    const v = get(s.path);
    return v === null || v === undefined ? '—' : String(v);
  };
  const rows = ENV_SETTINGS.map((s) => `| \`${s.env}\` | \`${shown(s)}\` | ${s.doc} |`);
  rows.splice(10, 0, '| `PGW_KEY_PASSPHRASE_FILE` | — | file holding the passphrase (instead of the variable) |');
  return ['| variable | default | meaning |', '| --- | --- | --- |', ...rows].join('\n');
}
