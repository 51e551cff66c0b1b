// One API read as page state: the data, a readable problem, and a reload.
import { useCallback, useEffect, useState } from "preact/hooks";
import { problemText } from "./api";

export interface Loaded<T> {
  data: T | undefined;
  error: string | null;
  reload: () => Promise<void>;
}

type Answer<T> = { data?: T; error?: unknown; response: Response };

/** Loads with `read` now, again when `deps` change, and every `pollMs` while `poll` holds. */
export function useLoad<T>(
  read: () => Promise<Answer<T>>,
  deps: unknown[],
  poll?: { everyMs: number; while: (data: T) => boolean },
): Loaded<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<string | null>(null);
  const reload = useCallback(async () => {
    try {
      const answer = await read();
      if (answer.data !== undefined) {
        setData(answer.data);
        setError(null);
      } else setError(problemText(answer.error, answer.response));
    } catch {
      setError("The shop cannot be reached. Check your connection and try again.");
    }
  }, deps);
  useEffect(() => {
    void reload();
  }, [reload]);
  useEffect(() => {
    if (!poll || data === undefined || !poll.while(data)) return;
    const timer = setTimeout(() => void reload(), poll.everyMs);
    return () => clearTimeout(timer);
  }, [data, reload]);
  return { data, error, reload };
}
