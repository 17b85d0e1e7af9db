/** Renders the environment settings as the README's config table (checked by a test). */
import { ENV_SETTINGS, loadConfig } from './config.js';

export function configTable(): string {
  const defaults = loadConfig({ env: {} }) as unknown as Record<string, unknown>;
  const get = (dotted: string): unknown => dotted.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], defaults);
  const shown = (s: (typeof ENV_SETTINGS)[number]): string => {
    if (s.env === 'PGW_DATA_DIR') return './var';
    if (s.env === 'PGW_DATABASE_URL') return 'sqlite:<PGW_DATA_DIR>/ledger.db';
    const v = get(s.path);
    return v === null || v === undefined || (Array.isArray(v) && v.length === 0) ? '—' : String(v);
  };
  // Secrets may also come from a file: that row follows the variable's own.
  const fileRows: Record<string, string> = {
    PGW_KEY_PASSPHRASE: '| `PGW_KEY_PASSPHRASE_FILE` | — | file holding the passphrase (instead of the variable) |',
    PGW_DATA_KEY: '| `PGW_DATA_KEY_FILE` | — | file holding the data master key (instead of the variable) |',
  };
  const rows = ENV_SETTINGS.flatMap((s) => [`| \`${s.env}\` | \`${shown(s)}\` | ${s.doc} |`, ...(fileRows[s.env] ? [fileRows[s.env]!] : [])]);
  return ['| variable | default | meaning |', '| --- | --- | --- |', ...rows].join('\n');
}
