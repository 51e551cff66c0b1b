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

/** Tabs choosing which status a list shows. */
export function StatusTabs<T extends string>(props: {
  label: string;
  options: readonly T[];
  value: T;
  onChange: (value: T) => void;
}) {
  return (
    <div role="tablist" aria-label={props.label} class="row">
      {props.options.map((option) => (
        <button type="button" role="tab" aria-selected={option === props.value} key={option} onClick={() => props.onChange(option)}>
          {option[0].toUpperCase() + option.slice(1)}
        </button>
      ))}
    </div>
  );
}
