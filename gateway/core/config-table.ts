/** Renders the environment settings as the README's config table (checked by a test). */
import { SETTINGS } from './config.js';
import { isDerived } from './config-fields.js';

export function configTable(): string {
  const rows = SETTINGS.flatMap((s) => {
    if (s.env === null) return []; // file-only
    const row = `| \`${s.env}\` | \`${shown(s.value.default)}\` | ${s.doc} |`;
    // A secret that may also come from a file: that variable's row follows.
    return s.file ? [row, `| \`${s.file.env}\` | — | ${s.file.doc} |`] : [row];
  });
  return ['| variable | default | meaning |', '| --- | --- | --- |', ...rows].join('\n');
}

function shown(v: unknown): string {
  if (isDerived(v)) return v.shown;
  return v === null || v === undefined || (Array.isArray(v) && v.length === 0) ? '—' : String(v);
}
