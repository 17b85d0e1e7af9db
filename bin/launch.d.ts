/** Types of bin/launch.js (plain JavaScript: it runs before any TypeScript loader). */
export declare const NODE_FLAGS: readonly string[];
export declare const SOURCE_DIRS: readonly string[];
export declare const STAMP: string;
export declare function sourceHash(root: string): string;
export declare function compiledEntry(root: string): string | null;
