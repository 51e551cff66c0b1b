// Small pieces every page uses.
import { money } from "../api";

/** A problem from the API, readable; announced to screen readers. */
export function Problem({ text }: { text: string | null | undefined }) {
  if (!text) return null;
  return (
    <p class="problem" role="alert">
      {text}
    </p>
  );
}

export function Price({ cents }: { cents: number }) {
  return <span class="price">{money(cents)}</span>;
}

export function Loading() {
  return <p aria-busy="true">Loading…</p>;
}
