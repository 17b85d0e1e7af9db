/**
 * openpgp.js, as every module of ours imports it (never `from 'openpgp'` directly; a unit
 * test holds us to that).
 *
 * Loaded while Node's global DecompressionStream is hidden, so openpgp.js inflates zip/zlib
 * packets with its own streaming inflater (fflate) instead. Node 20 builds that global on an
 * adapter that queues up to 16,384 chunks of output before it pauses zlib — about 256 MiB:
 * an incompressible 512 MiB batch sent with zlib took the decrypt stage to 683 MiB RSS,
 * against ~250 MiB with the inflater (which was also faster there; ~25% slower on JSON that
 * compresses well). openpgp.js decides at load time, and restoring the global right after
 * leaves it as it was for everything else. The decrypt stage inflates GnuPG's usual shape
 * (one zip/zlib packet inside SEIPD v1) with Node's zlib itself, bounded: keys/pgp/inner-inflate.ts.
 */
import { restoreDecompressionStream } from './openpgp-lib-prelude.js';
import * as openpgp from 'openpgp';

restoreDecompressionStream();

export { openpgp };
