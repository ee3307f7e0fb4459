// The signed-in session: its bearer token (an account-API session, never an API key) in localStorage,
// so that a reload keeps the user signed in until the session expires or they sign out.
import { useEffect, useState } from 'preact/hooks';
import type { Account } from './api-types.js';

const KEY = 'resultity.session';

export interface StoredSession {
  token: string;
  expires_at: string;
  account: Account;
}

type Listener = (s: StoredSession | null) => void;
const listeners = new Set<Listener>();

function read(): StoredSession | null {
  try {
    const raw = localStorage.getItem(KEY);
    if (!raw) return null;
    const s = JSON.parse(raw) as StoredSession;
    return Date.parse(s.expires_at) > Date.now() ? s : null;
  } catch {
    return null;
  }
}

let current: StoredSession | null = read();

export function getSession(): StoredSession | null {
  return current;
}

export function setSession(s: StoredSession | null): void {
  current = s;
  if (s) localStorage.setItem(KEY, JSON.stringify(s));
  else localStorage.removeItem(KEY);
  for (const l of listeners) l(s);
}

export function useSession(): StoredSession | null {
  const [s, set] = useState(current);
  useEffect(() => {
    listeners.add(set);
    return () => void listeners.delete(set);
  }, []);
  return s;
}
