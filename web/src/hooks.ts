// Data loading for the pages: one call (reloadable), or a call repeated while the page is visible.
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { messageOf } from './api.js';

export interface Loaded<T> {
  data: T | null;
  error: string | null;
  loading: boolean;
  reload: () => void;
}

/** Runs `load` when `deps` change; `reload()` runs it again. A stale answer never overwrites a newer one. */
export function useLoad<T>(load: () => Promise<T>, deps: readonly unknown[]): Loaded<T> {
  const [state, setState] = useState<{ data: T | null; error: string | null; loading: boolean }>({ data: null, error: null, loading: true });
  const seq = useRef(0);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    const mine = ++seq.current;
    setState((s) => ({ ...s, loading: true }));
    load().then(
      (data) => mine === seq.current && setState({ data, error: null, loading: false }),
      (err: unknown) => mine === seq.current && setState((s) => ({ data: s.data, error: messageOf(err), loading: false })),
    );
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { ...state, reload };
}

/**
 * Calls `load` now and every `intervalMs` while the document is visible (a hidden tab costs the server
 * nothing), and at once when it becomes visible again. Keeps the last good answer through errors.
 */
export function usePoll<T>(load: () => Promise<T>, intervalMs: number): { data: T | null; error: string | null; updatedAt: number | null } {
  const [state, setState] = useState<{ data: T | null; error: string | null; updatedAt: number | null }>({ data: null, error: null, updatedAt: null });
  const loadRef = useRef(load);
  loadRef.current = load;
  useEffect(() => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    let stopped = false;
    const run = async () => {
      clearTimeout(timer);
      if (document.visibilityState === 'visible') {
        try {
          const data = await loadRef.current();
          if (!stopped) setState({ data, error: null, updatedAt: Date.now() });
        } catch (err) {
          if (!stopped) setState((s) => ({ ...s, error: messageOf(err) }));
        }
      }
      if (!stopped) timer = setTimeout(() => void run(), intervalMs);
    };
    const onVisible = () => {
      if (document.visibilityState === 'visible') void run();
    };
    void run();
    document.addEventListener('visibilitychange', onVisible);
    return () => {
      stopped = true;
      clearTimeout(timer);
      document.removeEventListener('visibilitychange', onVisible);
    };
  }, [intervalMs]);
  return state;
}
