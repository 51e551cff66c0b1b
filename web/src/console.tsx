// The console of the local stack (devstack serves it at /__devstack/ and answers its
// /__devstack/api/ calls): every function with its triggers and what it did, every queue and
// DLQ with depth and age (a DLQ readable and redrivable), and one request as a waterfall across
// the functions, AWS calls and queues it crossed. Only devstack has it; AWS has CloudWatch.
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { useRoute } from "./router";
import "./style.css";

interface FunctionRow {
  name: string;
  memory_mb: number;
  routes: string[];
  authorizer: boolean;
  queues: string[];
  schedules: string[];
  invocations: number;
  cold_starts: number;
  errors: number;
  last_init_ms: number | null;
  last_invoked_ms: number | null;
  down: boolean;
  event_sources_enabled: boolean;
  logs: string[];
}

interface QueueRow {
  logical_id: string;
  name: string;
  dlq: boolean;
  redrive_to: string[];
  visible: number;
  in_flight: number;
  delayed: number;
  oldest_age_ms: number | null;
  last_wait_ms: number | null;
}

interface Message {
  message_id: string;
  body: string;
  sent_ms: number | null;
  receive_count: number | null;
}

interface Span {
  trace_id: string;
  correlation_ids?: string[];
  kind: "request" | "invocation" | "aws" | "queue";
  name: string;
  caller?: string;
  target?: string;
  start_ms: number;
  duration_ms: number;
  init_ms?: number;
  outcome: string;
}

const API = "/__devstack/api";

async function call<T>(path: string, init?: RequestInit): Promise<T> {
  const response = await fetch(`${API}/${path}`, init);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.detail ?? `devstack answered ${response.status}`);
  return body as T;
}

/** `read` now and again `everyMs` after each read settled, while the page shows it. */
function usePolled<T>(read: () => Promise<T>, everyMs: number): [T | undefined, string | null, () => void] {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<string | null>(null);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    read()
      .then((value) => live && (setData(value), setError(null)))
      .catch((e: Error) => live && setError(e.message))
      .finally(() => {
        if (live) timer = setTimeout(() => setTick((t) => t + 1), everyMs);
      });
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [tick]);
  return [data, error, () => setTick((t) => t + 1)];
}

const ms = (value: number | null | undefined) => (value == null ? "–" : value < 1000 ? `${value.toFixed(1)} ms` : `${(value / 1000).toFixed(1)} s`);

function Functions() {
  const [functions, error] = usePolled(() => call<FunctionRow[]>("functions"), 2000);
  if (error) return <p class="problem" role="alert">{error}</p>;
  if (!functions) return <p aria-busy="true">Loading…</p>;
  return (
    <table aria-label="Functions">
      <thead>
        <tr>
          <th>Function</th>
          <th>Triggered by</th>
          <th>Invocations</th>
          <th>Cold starts</th>
          <th>Errors</th>
          <th>Last init</th>
        </tr>
      </thead>
      <tbody>
        {functions.map((f) => (
          <tr key={f.name}>
            <td>
              <details>
                <summary>{f.name}</summary>
                <p class="muted">
                  {f.memory_mb} MB{f.down ? " · marked down" : ""}
                  {f.event_sources_enabled ? "" : " · event sources disabled"}
                </p>
                <pre class="logs" aria-label={`Last log lines of ${f.name}`}>
                  {f.logs.length ? f.logs.join("\n") : "(nothing logged yet)"}
                </pre>
              </details>
            </td>
            <td class="muted">
              {[...f.routes, ...(f.authorizer ? ["authorizer"] : []), ...f.queues.map((q) => `queue ${q}`), ...f.schedules].join(", ")}
            </td>
            <td>{f.invocations}</td>
            <td>{f.cold_starts}</td>
            <td class={f.errors ? "status cancelled" : ""}>{f.errors}</td>
            <td>{ms(f.last_init_ms)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function DlqMessages({ queue, onRedriven }: { queue: QueueRow; onRedriven: () => void }) {
  const [messages, setMessages] = useState<Message[] | null>(null);
  const [note, setNote] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const read = async () => {
    try {
      setMessages(await call<Message[]>(`queues/${queue.logical_id}/messages`));
    } catch (e) {
      setNote((e as Error).message);
    }
  };
  const redrive = async () => {
    setBusy(true);
    try {
      await call(`queues/${queue.logical_id}/redrive`, { method: "POST" });
      setNote(`Moving the messages of ${queue.name} back to ${queue.redrive_to.join(", ")}.`);
      setMessages(null);
      onRedriven();
    } catch (e) {
      setNote((e as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <div>
      <div class="row">
        <button type="button" onClick={read} aria-label={`Read messages of ${queue.name}`}>
          Read messages
        </button>
        {queue.redrive_to.length > 0 && (
          <button type="button" onClick={redrive} disabled={busy || queue.visible === 0} aria-label={`Redrive ${queue.name}`}>
            Redrive
          </button>
        )}
      </div>
      {note && <p role="status">{note}</p>}
      {messages && (
        <ul class="list" aria-label={`Messages of ${queue.name}`}>
          {messages.length === 0 && <li>No messages.</li>}
          {messages.map((m) => (
            <li key={m.message_id}>
              <p class="muted">
                {m.message_id} · received {m.receive_count ?? "?"} times (the console's reads count too) ·{" "}
                {m.sent_ms ? new Date(m.sent_ms).toLocaleString() : ""}
              </p>
              <pre class="logs">{pretty(m.body)}</pre>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

function pretty(body: string): string {
  try {
    return JSON.stringify(JSON.parse(body), null, 2);
  } catch {
    return body;
  }
}

function Queues() {
  const [queues, error, refresh] = usePolled(() => call<QueueRow[]>("queues"), 2000);
  if (error) return <p class="problem" role="alert">{error}</p>;
  if (!queues) return <p aria-busy="true">Loading…</p>;
  return (
    <table aria-label="Queues">
      <thead>
        <tr>
          <th>Queue</th>
          <th>Waiting</th>
          <th>In flight</th>
          <th>Age</th>
        </tr>
      </thead>
      <tbody>
        {queues.map((q) => (
          <tr key={q.logical_id}>
            <td>
              {q.name} {q.dlq && <span class="badge">DLQ{q.redrive_to.length ? ` of ${q.redrive_to.join(", ")}` : ""}</span>}
              {q.dlq && <DlqMessages queue={q} onRedriven={refresh} />}
            </td>
            <td>{q.visible + q.delayed}</td>
            <td>{q.in_flight}</td>
            <td title={q.dlq ? "the oldest of the (up to 10) messages read" : "the last delivered message's wait"}>
              {q.dlq ? (q.visible ? `oldest read ${ms(q.oldest_age_ms)}` : "–") : q.last_wait_ms == null ? "–" : `last wait ${ms(q.last_wait_ms)}`}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function Waterfall({ spans }: { spans: Span[] }) {
  if (spans.length === 0) return <p>Nothing recorded for this correlation id (yet).</p>;
  const start = Math.min(...spans.map((s) => s.start_ms));
  const end = Math.max(...spans.map((s) => s.start_ms + s.duration_ms));
  const total = Math.max(end - start, 1);
  return (
    <>
      <p class="muted">
        {spans.length} steps over {ms(total)}: requests through the gateway, function invocations, the AWS calls they made and each
        message's wait in its queue.
      </p>
      <ol class="waterfall" aria-label="Waterfall">
        {spans.map((s, i) => (
          <li key={i} class={s.kind}>
            <span class="what" title={`${s.kind} ${s.name}${s.target ? ` → ${s.target}` : ""}`}>
              <span class="kind">{s.kind}</span> {s.name}
              {s.target ? ` → ${s.target}` : ""}
              {s.caller ? <span class="muted"> ({s.caller})</span> : null}
            </span>
            <span class="track">
              <span
                class="bar"
                style={{ left: `${((s.start_ms - start) / total) * 100}%`, width: `${Math.max((s.duration_ms / total) * 100, 0.4)}%` }}
              />
            </span>
            <span class="took">
              {ms(s.duration_ms)}
              {s.init_ms != null ? ` (init ${ms(s.init_ms)})` : ""} · {s.outcome}
            </span>
          </li>
        ))}
      </ol>
    </>
  );
}

function Trace({ initial }: { initial: string }) {
  const [id, setId] = useState(initial);
  const [spans, setSpans] = useState<Span[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [requests] = usePolled(() => call<Span[]>("requests"), 3000);
  const search = async (correlationId: string) => {
    setId(correlationId);
    try {
      setSpans(await call<Span[]>(`trace?correlation_id=${encodeURIComponent(correlationId)}`));
      setError(null);
    } catch (e) {
      setError((e as Error).message);
    }
  };
  useEffect(() => {
    if (initial) void search(initial);
  }, [initial]);
  return (
    <>
      <form
        class="row"
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          void search(id.trim());
        }}
      >
        <label class="grow">
          Correlation id
          <input value={id} onInput={(e) => setId(e.currentTarget.value)} placeholder="the x-correlation-id of a response" />
        </label>
        <button type="submit">Show the waterfall</button>
      </form>
      {error && <p class="problem" role="alert">{error}</p>}
      {spans && <Waterfall spans={spans} />}
      <h2>Latest requests</h2>
      <ul class="list" aria-label="Latest requests">
        {(requests ?? []).slice(0, 15).map((r, i) => (
          <li key={i} class="row">
            <span class="grow">
              {r.name} · {r.outcome} · {ms(r.duration_ms)}
            </span>
            {r.correlation_ids?.[0] && (
              <button type="button" onClick={() => void search(r.correlation_ids![0])}>
                Waterfall of {r.name} {r.correlation_ids[0].slice(0, 8)}
              </button>
            )}
          </li>
        ))}
      </ul>
    </>
  );
}

function Console() {
  const [page, id] = useRoute();
  const tabs: [string, string][] = [
    ["functions", "Functions"],
    ["queues", "Queues"],
    ["trace", "Requests"],
  ];
  const current = tabs.some(([key]) => key === page) ? page : "functions";
  return (
    <>
      <header>
        <span class="brand">devstack console</span>
        <nav aria-label="Console">
          {tabs.map(([key, label]) => (
            <a href={`#/${key}`} key={key} aria-current={key === current ? "page" : undefined}>
              {label}
            </a>
          ))}
        </nav>
        <a href="/">The shop</a>
      </header>
      <main class="wide">
        <h1>{tabs.find(([key]) => key === current)![1]}</h1>
        {current === "functions" && <Functions />}
        {current === "queues" && <Queues />}
        {current === "trace" && <Trace initial={id ?? ""} />}
      </main>
    </>
  );
}

render(<Console />, document.getElementById("app")!);
