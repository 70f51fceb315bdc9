/**
 * The operator API key: taken from `?key=` once, kept in sessionStorage (per tab, gone when the tab
 * closes), and removed from the address bar so it does not linger in history or screenshots. Pure
 * apart from the storage passed in.
 */

export const STORAGE_KEY = "dragoman.operatorKey";

export interface KeyStore {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/**
 * Reads the key from `href`'s `key` parameter (stored, and the URL to show without it returned) or
 * else from storage. `cleanUrl` is null when the address needs no change.
 */
export function takeKey(href: string, storage: KeyStore): { key: string | null; cleanUrl: string | null } {
  const url = new URL(href);
  const fromUrl = url.searchParams.get("key");
  if (fromUrl !== null) {
    url.searchParams.delete("key");
    const clean = url.pathname + url.search + url.hash;
    if (fromUrl.trim() !== "") {
      storage.setItem(STORAGE_KEY, fromUrl.trim());
      return { key: fromUrl.trim(), cleanUrl: clean };
    }
    return { key: storage.getItem(STORAGE_KEY), cleanUrl: clean };
  }
  return { key: storage.getItem(STORAGE_KEY), cleanUrl: null };
}
